// `npm run bench`: runs each benchmark in its own lab namespace and prints
// results with ratios against the raw baselines measured in the same run.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Lab } from '../lab/index.js';
import { routingBench } from './routing.js';
import { controllerBench } from './controller.js';
import { containerBench } from './container.js';
import { fleetBench } from './fleet.js';
import { etcdClientsBench } from './etcd-clients.js';
import { dashboardBench } from './dashboard.js';
import { agentConnectionsBench } from './agent-connections.js';

const FIREWALL_AGENT = fileURLToPath(new URL('./firewall-agent.js', import.meta.url));
const AGENT_MAIN = fileURLToPath(new URL('../../agent/src/main.js', import.meta.url));

/** The node flags the agent runs with: those on its shebang line. */
function agentNodeFlags(): string[] {
  const shebang = readFileSync(AGENT_MAIN, 'utf8').split('\n')[0] ?? '';
  return shebang.split(/\s+/).filter((w) => w.startsWith('--'));
}

interface FirewallResult {
  rules: number; prefixes: number; rounds: number; deltas: number;
  fullApply: { baselineMs: number; sameTextMs: number; oursMs: number; ratio: number; ratioSameText: number };
  addPrefix: { p50Ms: number; p99Ms: number; maxMs: number };
  removePrefix: { p50Ms: number; p99Ms: number; maxMs: number };
  nftCliAddElementMs: number;
}

const f = (n: number): string => n.toFixed(n < 10 ? 2 : 0);

async function firewall(): Promise<boolean> {
  const lab = await Lab.create({ kind: 'b' });
  try {
    const ns = await lab.netns('fw');
    const { stdout } = await ns.exec([process.execPath, '--expose-gc', FIREWALL_AGENT], { timeoutMs: 900_000, stdin: '' });
    const r = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as FirewallResult;
    await ns.exec(['nft', 'flush', 'ruleset']);
    const flags = agentNodeFlags();
    const mem = await ns.exec([process.execPath, '--expose-gc', ...flags, FIREWALL_AGENT, 'rss'], { timeoutMs: 300_000 });
    const { rssMb } = JSON.parse(mem.stdout.trim().split('\n').pop() ?? '{}') as { rssMb: number };
    const checks: [string, string, boolean][] = [
      [`full apply, ${r.rules} rules + ${r.prefixes} prefixes`, `${f(r.fullApply.oursMs)} ms vs plain nft -f of a hand-written interval-set ruleset ${f(r.fullApply.baselineMs)} ms = ${r.fullApply.ratio.toFixed(2)}x (goal <= 1.2x)`, r.fullApply.ratio <= 1.2],
      ['one prefix added to the 100k object', `p50 ${f(r.addPrefix.p50Ms)} ms, p99 ${f(r.addPrefix.p99Ms)} ms, max ${f(r.addPrefix.maxMs)} ms (goal <= 20 ms); nft CLI add element: ${f(r.nftCliAddElementMs)} ms`, r.addPrefix.p99Ms <= 20],
      ['one prefix removed from the 100k object', `p50 ${f(r.removePrefix.p50Ms)} ms, p99 ${f(r.removePrefix.p99Ms)} ms, max ${f(r.removePrefix.maxMs)} ms (goal <= 20 ms)`, r.removePrefix.p99Ms <= 20],
      [`RSS holding the applied 100k policy (node ${flags.join(' ')} as the agent runs)`, `${f(rssMb)} MB (goal <= 80 MB)`, rssMb <= 80],
    ];
    process.stdout.write(`firewall (median of ${r.rounds} rounds, ${r.deltas} deltas each way):\n`);
    for (const [what, figure, ok] of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'MISS'} ${what}: ${figure}\n`);
    process.stdout.write(`  info plain nft -f of the agent's own rendered text: ${f(r.fullApply.sameTextMs)} ms; the agent took ${r.fullApply.ratioSameText.toFixed(2)}x that (validation, rendering, process start)\n`);
    return checks.every(([, , ok]) => ok);
  } finally {
    await lab.teardown();
  }
}

async function routing(): Promise<boolean> {
  const r = await routingBench(3);
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const toFib = med(r.toFibMs);
  const alone = med(r.frrAloneMs);
  const checks: [string, string, boolean][] = [
    ['render plus no-op check (re-apply of an unchanged intent)', `${f(r.noopMs)} ms (goal <= 50 ms); a frr-reload.py --test alone takes ${f(r.reloadTestMs)} ms`, r.noopMs <= 50],
    ['intent in hand to the /32 in both ToRs\' FIBs', `${f(toFib)} ms (goal <= 3000 ms); FRR started with the same config: ${f(alone)} ms = ${(toFib / alone).toFixed(2)}x; rounds ${r.toFibMs.map((x) => x.toFixed(0)).join(', ')} ms`, toFib <= 3000],
  ];
  process.stdout.write('routing (median of 3 fresh fabrics):\n');
  for (const [what, figure, ok] of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'MISS'} ${what}: ${figure}\n`);
  return checks.every(([, , ok]) => ok);
}

async function controller(): Promise<boolean> {
  process.stdout.write('controller (simulated agents in the same process; RSS per agent includes their client side):\n');
  let ok = true;
  for (const n of [1000, 5000]) {
    const r = await controllerBench(n);
    const line = `${n} agents: one prefix added -> every agent updated: p50 ${f(r.p50Ms)} ms, p99 ${f(r.p99Ms)} ms, last ${f(r.lastMs)} ms; `
      + `bytes per agent ${r.deltaBytesPerAgent.toFixed(0)} (delta) vs ${r.snapshotBytesPerAgent.toFixed(0)} (snapshot); RSS ${r.rssPerAgentKb.toFixed(1)} KB per agent`;
    const good = r.p99Ms <= 2000 && r.deltaBytesPerAgent <= 100 * 1024;
    ok &&= good;
    process.stdout.write(`  ${good ? 'ok  ' : 'MISS'} ${line} (goal at 10,000: p99 <= 2000 ms, <= 100 KB per agent)\n`);
  }
  return ok;
}

async function container(): Promise<boolean> {
  const r = await containerBench(3);
  const med = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const alone = med(r.systemdAloneMs);
  process.stdout.write('container image (median of 3 boots each, systemd-nspawn --network-namespace-path into a lab host):\n');
  process.stdout.write(`  info image ${r.imageMb.toFixed(0)} MB compressed, ${r.unpackedMb} MB unpacked\n`);
  process.stdout.write(`  info first boot to hostnet-agent READY (policy from the controller): ${f(med(r.firstBootMs))} ms = ${(med(r.firstBootMs) / alone).toFixed(2)}x systemd alone; rounds ${r.firstBootMs.join(', ')} ms\n`);
  process.stdout.write(`  info reboot to hostnet-agent READY (cached state): ${f(med(r.rebootMs))} ms = ${(med(r.rebootMs) / alone).toFixed(2)}x systemd alone; rounds ${r.rebootMs.join(', ')} ms\n`);
  process.stdout.write(`  info baseline, the same image with the agent and FRR masked, to systemd running: ${f(alone)} ms; rounds ${r.systemdAloneMs.join(', ')} ms\n`);
  return true;
}

async function fleet(): Promise<boolean> {
  const n = Number(process.env.BENCH_FLEET_AGENTS ?? 10_000);
  process.stdout.write(`fleet (${n} simulated agents in 2 processes of their own, 2 controller replicas on a 3-member etcd, all on this machine):\n`);
  const r = await fleetBench(n, (l) => process.stdout.write(`  ...  ${l}\n`));
  const last = r.update.at(-1) ?? { p50Ms: NaN, p99Ms: NaN, lastMs: NaN };
  const worstP99 = Math.max(...r.update.map((u) => u.p99Ms));
  const checks: [string, string, boolean][] = [
    [`one prefix added -> every agent updated (${r.update.length} changes)`, `p50 ${f(last.p50Ms)} ms, p99 ${f(last.p99Ms)} ms, last ${f(last.lastMs)} ms (last change); worst p99 of the ${r.update.length}: ${f(worstP99)} ms (goal at 10,000 agents: p99 <= 1000 ms)`, r.update.length > 0 && worstP99 <= 1000],
    ['controller RSS per connected agent (both replicas)', `${f(r.rssKbPerAgent.afterConnect)} KB after connect, ${f(r.rssKbPerAgent.afterChanges)} KB 2 s after ${r.update.length} changes, ${f(r.rssKbPerAgent.settled)} KB 30 s later (goal <= 50 KB)`, Math.max(r.rssKbPerAgent.afterConnect, r.rssKbPerAgent.afterChanges, r.rssKbPerAgent.settled) <= 50],
    [`host creates per second, etcd (2 replicas, 4 clients)`, `${f(r.creates.etcd.atN)}/s at ${n} hosts vs ${f(r.creates.etcd.at100)}/s at 100 = ${(r.creates.etcd.at100 / r.creates.etcd.atN).toFixed(2)}x slower (goal <= 2x)`, r.creates.etcd.at100 / r.creates.etcd.atN <= 2],
    [`host creates per second, SQLite (4 clients)`, `${f(r.creates.sqlite.atN)}/s at ${n} hosts vs ${f(r.creates.sqlite.at100)}/s at 100 = ${(r.creates.sqlite.at100 / r.creates.sqlite.atN).toFixed(2)}x slower (goal <= 2x)`, r.creates.sqlite.at100 / r.creates.sqlite.atN <= 2],
    [`one replica of the two restarted (its agents fail over to the other)`, `serving ${f(r.oneRestart.servingMs)} ms after its spawn (goal <= 2000 ms), every agent streaming ${f(r.oneRestart.allStreamingMs)} ms after the kill (goal <= 30000 ms)`, r.oneRestart.servingMs <= 2000 && r.oneRestart.allStreamingMs <= 30_000],
    [`both replicas restarted, one back, all ${n} agents reconnecting to it`, `serving after ${f(r.restart.servingMs)} ms (goal <= 2000 ms), every agent streaming after ${f(r.restart.allStreamingMs)} ms (goal <= 30000 ms)`, r.restart.servingMs <= 2000 && r.restart.allStreamingMs <= 30_000],
  ];
  for (const [what, figure, ok] of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'MISS'} ${what}: ${figure}\n`);
  process.stdout.write(`  info ${n} agents connected and synced in ${f(r.syncMs)} ms; p99 per change: ${r.update.map((u) => f(u.p99Ms)).join(', ')} ms\n`);
  return checks.every(([, , ok]) => ok);
}

async function agentConnections(): Promise<boolean> {
  const n = Number(process.env.BENCH_CONNECTIONS ?? 2000);
  process.stdout.write(`agent connections (what one costs the controller: a grpc-js server with the controller's settings, ${n} clients in another process; plaintext is the baseline):\n`);
  const [plain, tls, resumed] = await agentConnectionsBench(n);
  if (!plain || !tls || !resumed) return false;
  const line = (c: typeof plain): string => `${f(c.cpuMsPerConnection)} ms CPU per connection made, ${f(c.rssKbPerConnection)} KB RSS (heap ${f(c.heapKbPerConnection)} KB) per connection, ${f(c.cpuMsPerMessage * 1000)} us CPU per message pushed`;
  process.stdout.write(`  info plaintext (grpc-js and HTTP/2 alone): ${line(plain)}\n`);
  process.stdout.write(`  info mutual TLS, full handshakes (the controller's agent listener; an agent's first connect): ${line(tls)}\n`);
  process.stdout.write(`  info mutual TLS, sessions resumed (an agent's reconnect): ${line(resumed)}\n`);
  const ratio = (c: typeof plain): string => `connection ${(c.cpuMsPerConnection / plain.cpuMsPerConnection).toFixed(1)}x CPU, ${(c.rssKbPerConnection / plain.rssKbPerConnection).toFixed(1)}x RSS; message ${(c.cpuMsPerMessage / plain.cpuMsPerMessage).toFixed(1)}x CPU`;
  process.stdout.write(`  info full TLS / plaintext: ${ratio(tls)}; resumed / plaintext: ${ratio(resumed)}\n`);
  process.stdout.write(`  info so 10,000 agents reconnecting cost one replica ${f(resumed.cpuMsPerConnection * 10)} CPU-s of handshakes resumed (${f(tls.cpuMsPerConnection * 10)} full), and a change pushed to 10,000 streams ${f(tls.cpuMsPerMessage * 10_000)} CPU-ms\n`);
  return true;
}

async function etcdClients(): Promise<boolean> {
  process.stdout.write('etcd clients (3-member cluster, each client watching one prefix through the faulted member; view compared with etcd):\n');
  const results = await etcdClientsBench();
  for (const r of results) {
    const view = r.scenario.includes('quorum') ? '' : r.convergedMs === undefined ? `view still wrong (${r.wrongKeys} keys) 20 s after; ` : `view right ${f(r.convergedMs)} ms after; `;
    process.stdout.write(`  info ${r.client}, ${r.scenario}: ${view}told its user: ${r.noticed.length > 0 ? r.noticed.slice(0, 3).join(' | ') : 'nothing'}\n`);
  }
  const ours = results.filter((r) => r.client === 'hostnet feed');
  return ours.every((r) => r.wrongKeys === 0 && r.noticed.length > 0);
}

async function dashboard(): Promise<boolean> {
  const n = Number(process.env.BENCH_DASHBOARD_HOSTS ?? 10_000);
  process.stdout.write(`dashboard (controller store, agents' side and HTTP in one process, SQLite; ${n} synthetic hosts reporting over gRPC; the page in headless Chromium, median of 5 loads):\n`);
  const [small, big] = await dashboardBench(n, (l) => process.stdout.write(`  ...  ${l}\n`));
  if (!small || !big) return false;
  const checks: [string, string, boolean][] = [
    [`GET /api/v1/summary at ${big.hosts} hosts`, `p50 ${f(big.summaryMs.p50)} ms, p99 ${f(big.summaryMs.p99)} ms; /healthz (the bare round trip) p50 ${f(big.healthzMs.p50)} ms = ${(big.summaryMs.p50 / big.healthzMs.p50).toFixed(1)}x; at ${small.hosts} hosts p50 ${f(small.summaryMs.p50)} ms (goal p99 <= 50 ms)`, big.summaryMs.p99 <= 50],
    [`one page of the host list (100 rows, sorted by status) at ${big.hosts} hosts`, `p50 ${f(big.pageOfHostsMs.p50)} ms, p99 ${f(big.pageOfHostsMs.p99)} ms; at ${small.hosts} hosts p50 ${f(small.pageOfHostsMs.p50)} ms (goal p99 <= 100 ms)`, big.pageOfHostsMs.p99 <= 100],
    [`the page loaded at ${big.hosts} hosts`, `first contentful paint ${f(big.firstPaintMs)} ms, summary and list drawn ${f(big.drawnMs)} ms; at ${small.hosts} hosts ${f(small.firstPaintMs)} / ${f(small.drawnMs)} ms = ${(big.drawnMs / small.drawnMs).toFixed(2)}x (goal drawn <= 1000 ms)`, big.drawnMs <= 1000],
    [`a status filter chosen (degraded) -> the rows show it, at ${big.hosts} hosts`, `${f(big.filterMs)} ms; at ${small.hosts} hosts ${f(small.filterMs)} ms (goal <= 200 ms)`, big.filterMs <= 200],
  ];
  for (const [what, figure, ok] of checks) process.stdout.write(`  ${ok ? 'ok  ' : 'MISS'} ${what}: ${figure}\n`);
  process.stdout.write(`  info a host id typed into the search -> the one row, at ${big.hosts} hosts: ${f(big.searchMs)} ms, of which 250 ms is the page waiting for the typist to pause\n`);
  process.stdout.write(`  info the whole list without paging (GET /api/v1/hosts, as before the page): ${f(big.allHostsMs)} ms, ${f(big.allHostsKb)} KB at ${big.hosts} hosts\n`);
  return checks.every(([, , ok]) => ok);
}

const only = process.argv[2];
const results = [];
if (!only || only === 'firewall') results.push(await firewall());
if (!only || only === 'routing') results.push(await routing());
if (!only || only === 'controller') results.push(await controller());
if (!only || only === 'container') results.push(await container());
if (!only || only === 'fleet') results.push(await fleet());
if (!only || only === 'agent-connections') results.push(await agentConnections());
if (!only || only === 'etcd-clients') results.push(await etcdClients());
if (!only || only === 'dashboard') results.push(await dashboard());
process.exitCode = results.every(Boolean) ? 0 : 1;
