// The firewall benchmark's inside half: runs in a fresh network namespace
// (`ip netns exec NS node dist/test/bench/firewall-agent.js`) and prints one
// JSON object. Every figure is paired with its raw baseline from the same run.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { silentLogger } from '../../common/log.js';
import { formatAddress } from '../../common/prefix.js';
import { run } from '../../common/run.js';
import { Firewall } from '../../agent/src/firewall/firewall.js';
import { nftCli } from '../../agent/src/firewall/nft-cli.js';
import { openNftNetlink } from '../../agent/src/firewall/nft-netlink.js';
import { FirewallPolicySchema, type FirewallPolicy } from '../../proto/gen/hostnet/v1/compiled_pb.js';
import { FirewallDeltaSchema } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { Action, Protocol } from '../../proto/gen/hostnet/v1/resources_pb.js';

const RULES = Number(process.env.BENCH_RULES ?? 10_000);
const PREFIXES = Number(process.env.BENCH_PREFIXES ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const DELTAS = Number(process.env.BENCH_DELTAS ?? 50);

/** Prefix i of the big object: /28s 32 addresses apart, so none merge. */
const bigPrefix = (i: number): string => `${formatAddress(4, 0x0a000000n + BigInt(i) * 32n)}/28`;
/** A free /28 in the gap after prefix i. */
const gapPrefix = (i: number): string => `${formatAddress(4, 0x0a000000n + BigInt(i) * 32n + 16n)}/28`;
const ruleSource = (i: number): string => formatAddress(4, 0xac100000n + BigInt(i));

function policy(version: string): FirewallPolicy {
  return create(FirewallPolicySchema, {
    version, hostId: 'bench', hostAddresses: ['10.255.0.1/32'],
    objects: [{ id: 'big', prefixes: Array.from({ length: PREFIXES }, (_, i) => bigPrefix(i)) }],
    rules: [
      { id: 'big', action: Action.ALLOW, source: { kind: { case: 'objectId', value: 'big' } }, protocol: Protocol.TCP, ports: [{ first: 443 }] },
      ...Array.from({ length: RULES - 1 }, (_, i) => ({
        id: `r${i}`, action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 1024 + (i % 60000) }],
        source: { kind: { case: 'prefixes' as const, value: { prefixes: [`${ruleSource(i)}/32`] } } },
      })),
    ],
    failsafe: { bgpPort: 179, uplinks: ['eth0', 'eth1'] },
  });
}

/** The same ruleset as a person would write it for nft -f. */
function handWritten(): string {
  const elements: string[] = [];
  for (let i = 0; i < PREFIXES; i++) elements.push(bigPrefix(i));
  // Same features as ours: a counter and an identifying comment on every rule.
  const rules = ['ip saddr @big tcp dport 443 counter accept comment "rule:big"'];
  for (let i = 0; i < RULES - 1; i++) {
    rules.push(`ip saddr ${ruleSource(i)} tcp dport ${1024 + (i % 60000)} counter accept comment "rule:r${i}"`);
  }
  return `table inet handmade {
\tset big {
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { ${elements.join(',\n')} }
\t}
\tchain input {
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept
\t\tjump acl
\t}
\tchain acl {
\t\t${rules.join('\n\t\t')}
\t}
}
`;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

async function flush(): Promise<void> {
  await run(['nft', 'flush', 'ruleset']);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'hostnet-bench-'));
  const file = join(dir, 'hand.nft');
  writeFileSync(file, handWritten());
  const log = silentLogger();

  // Our own rendered text, fed to nft by hand: the same kernel work without the agent around it.
  const renderedFile = join(dir, 'rendered.nft');
  const renderer = new Firewall({ nft: nftCli(run), openNetlink: openNftNetlink, log });
  writeFileSync(renderedFile, renderer.render(policy('rendered')));
  renderer.close();

  const baseline: number[] = [];
  const sameText: number[] = [];
  const ours: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    await flush();
    let t0 = performance.now();
    await run(['nft', '-f', file], { timeoutMs: 300_000 });
    baseline.push(performance.now() - t0);

    await flush();
    t0 = performance.now();
    await run(['nft', '-f', renderedFile], { timeoutMs: 300_000 });
    sameText.push(performance.now() - t0);

    await flush();
    const fw = new Firewall({ nft: nftCli(run), openNetlink: openNftNetlink, log });
    const p = policy(`bench-${round}`);
    t0 = performance.now();
    await fw.applyPolicy(p);
    ours.push(performance.now() - t0);
    fw.close();
  }

  // Incremental: the table holds the 100k set; one prefix in, one out.
  await flush();
  const fw = new Firewall({ nft: nftCli(run), openNetlink: openNftNetlink, log });
  await fw.applyPolicy(policy('v0'));
  await fw.watch();
  const add: number[] = [];
  const remove: number[] = [];
  let version = 'v0';
  for (let i = 0; i < DELTAS; i++) {
    const prefix = gapPrefix(i * 997 % PREFIXES);
    const steps: [number[], { added?: string[]; removed?: string[] }][] = [[add, { added: [prefix] }], [remove, { removed: [prefix] }]];
    for (const [list, change] of steps) {
      const next = `v${add.length + remove.length + 1}`;
      const d = create(FirewallDeltaSchema, { baseVersion: version, version: next, objectChanges: [{ id: 'big', ...change }] });
      const t0 = performance.now();
      const r = await fw.applyDelta(d);
      list.push(performance.now() - t0);
      if (r.via !== 'netlink') throw new Error(`delta went via ${r.via}`);
      version = next;
    }
  }
  fw.close();
  // The same change through the nft CLI, to a copy of the set in a table of its own.
  await run(['nft', '-f', file], { timeoutMs: 300_000 });
  const cli: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run(['nft', 'add', 'element', 'inet', 'handmade', 'big', `{ ${gapPrefix(i)} }`]);
    cli.push(performance.now() - t0);
  }

  process.stdout.write(`${JSON.stringify({
    rules: RULES, prefixes: PREFIXES, rounds: ROUNDS, deltas: DELTAS,
    fullApply: {
      baselineMs: median(baseline), sameTextMs: median(sameText), oursMs: median(ours),
      ratio: median(ours) / median(baseline), ratioSameText: median(ours) / median(sameText), baseline, sameText, ours,
    },
    addPrefix: { p50Ms: median(add), p99Ms: pct(add, 0.99), maxMs: Math.max(...add) },
    removePrefix: { p50Ms: median(remove), p99Ms: pct(remove, 0.99), maxMs: Math.max(...remove) },
    nftCliAddElementMs: median(cli),
  })}\n`);
}

/** RSS of a process that holds only the applied 100k policy, as the agent would. */
async function rss(): Promise<void> {
  const log = silentLogger();
  const fw = new Firewall({ nft: nftCli(run), openNetlink: openNftNetlink, log });
  await fw.applyPolicy(policy('rss'));
  await fw.watch();
  for (let i = 0; i < 3; i++) {
    (globalThis as { gc?: () => void }).gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  process.stdout.write(`${JSON.stringify({ rssMb: process.memoryUsage().rss / 2 ** 20, heapMb: process.memoryUsage().heapUsed / 2 ** 20 })}\n`);
  fw.close();
}

if (process.argv[2] === 'rss') await rss();
else await main();
