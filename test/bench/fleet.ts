// The fleet benchmark: N simulated agents in processes of their own (so the
// controllers' RSS is theirs) against two controller replicas (real
// hostnet-controller processes) on a 3-member etcd cluster on loopback.
// Measures: one prefix added -> every agent updated (p50, p99, last); the
// controllers' RSS per connected agent after connect and after changes; host
// creates per second at 100 hosts and at N hosts, on etcd and on SQLite; and a
// replica restarted with every agent reconnecting to it: time to serving, to
// every agent streaming again. As in production, every agent enrolls with a
// one-time token and its own key and streams over its own mutual TLS
// connection. The agents' processes run at nice 19 (BENCH_AGENTS_NICE): they
// stand in for machines of their own, so they get the CPU the replicas and
// etcd leave (docs/benchmarks.md, Fleet, 2026-12-04 evening).
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { setPriority, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { create } from '@bufbuild/protobuf';
import { Metadata, credentials } from '@grpc/grpc-js';
import { createClient } from '../../proto/grpc/index.js';
import { AdminService } from '../../proto/gen/hostnet/v1/admin_pb.js';
import {
  AclSchema, Action, BgpListen, HostSchema, Multipath, NetworkCatalogSchema, NetworkObjectSchema, Protocol, SubnetSchema, TenantSchema,
} from '../../proto/gen/hostnet/v1/resources_pb.js';
import { EtcdCluster, etcdStoreLine } from '../../lab/etcd.js';
import { freePort } from '../lab/index.js';
import { cpuSeconds, rssKb } from './proc.js';
import { initCa } from '../../controller/src/identity/ca.js';

const CONTROLLER = fileURLToPath(new URL('../../controller/src/main.js', import.meta.url));
const AGENTS = fileURLToPath(new URL('./fleet-agents.js', import.meta.url));
const UNIT = fileURLToPath(new URL('../../../packaging/controller/hostnet-controller.service', import.meta.url));
const TOKEN = 'bench-operator-token-0123456789';
type Admin = ReturnType<typeof createClient<typeof AdminService.method>>;

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

export interface FleetResult {
  agents: number;
  update: { p50Ms: number; p99Ms: number; lastMs: number }[];
  /** Both replicas' RSS over their RSS before any agent, per agent: after connect, 2 s after the last change, 30 s after that. */
  rssKbPerAgent: { afterConnect: number; afterChanges: number; settled: number };
  creates: { etcd: { at100: number; atN: number }; sqlite: { at100: number; atN: number } };
  /** Both replicas killed, one brought back: every agent reconnects to it. */
  restart: { servingMs: number; allStreamingMs: number };
  /** One replica of the two killed and brought back: its agents fail over to the other; times from the kill. */
  oneRestart: { servingMs: number; allStreamingMs: number };
  syncMs: number;
}

export interface Controller {
  readonly name: string;
  readonly grpc: string;
  /** The agent listener (mutual TLS). */
  readonly agent: string;
  readonly http: string;
  child: ChildProcess;
  readonly start: () => Promise<number>;
}

/** The node flags the controller runs with in production: those of its systemd unit's ExecStart. */
function controllerNodeFlags(): string[] {
  const unit = readFileSync(UNIT, 'utf8');
  const exec = /^ExecStart=(.*)$/m.exec(unit)?.[1] ?? '';
  return process.env.BENCH_CONTROLLER_FLAGS !== undefined ? process.env.BENCH_CONTROLLER_FLAGS.split(' ').filter(Boolean) : exec.split(/\s+/).filter((w) => w.startsWith('--max') || w.startsWith('--optimize'));
}

/** The last start's phases from a replica's log: store loaded, every host compiled, serving. */
export async function startupPhases(file: string): Promise<string> {
  const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => /"(storeMs|startupMs|sinceStartMs)"/.test(l));
  const last = (key: string) => {
    const l = lines.filter((x) => x.includes(`"${key}"`)).at(-1);
    return l ? JSON.parse(l) as Record<string, number> : undefined;
  };
  const loaded = last('storeMs');
  const serving = last('startupMs');
  const compiled = last('sinceStartMs');
  return loaded && serving && compiled
    ? `store loaded ${loaded.storeMs} ms, serving ${serving.startupMs} ms, every host (${compiled.hosts}) compiled ${compiled.sinceStartMs} ms after the process began (the pass took ${compiled.compileMs} ms)`
    : '(not in the log)';
}

export async function controller(dir: string, name: string, store: string): Promise<Controller> {
  const [grpcPort, agentPort, httpPort] = [await freePort(), await freePort(), await freePort()];
  const tls = join(dir, 'tls');
  await writeFile(join(dir, `${name}.tokens.yaml`), `tokens:\n  - { name: ops, token: ${TOKEN}, role: operator }\n`);
  const config = join(dir, `${name}.yaml`);
  await writeFile(config, [
    store, `replica: ${name}`, `http: { listen: "127.0.0.1:${httpPort}" }`,
    `grpc: { listen: "127.0.0.1:${grpcPort}", agentListen: "127.0.0.1:${agentPort}", certFile: ${tls}/server.pem, keyFile: ${tls}/server.key }`,
    `ca: { certFile: ${tls}/ca.pem, keyFile: ${tls}/ca.key }`,
    `tokensFile: ${join(dir, `${name}.tokens.yaml`)}`, 'agents: { heartbeat: 30s }', 'log: { level: info }', '',
  ].join('\n'));
  const c: Controller = {
    name, grpc: `127.0.0.1:${grpcPort}`, agent: `127.0.0.1:${agentPort}`, http: `http://127.0.0.1:${httpPort}`, child: undefined as unknown as ChildProcess,
    async start() {
      const started = performance.now();
      // BENCH_HEAP=DIR: a heap snapshot of each replica after the changes (node --heapsnapshot-signal), for finding what grows.
      const heap = process.env.BENCH_HEAP ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${process.env.BENCH_HEAP}`] : [];
      // BENCH_PROFILE=DIR: a CPU profile of each replica's run (written when it exits cleanly: before the restart, and at the end).
      if (process.env.BENCH_PROFILE) heap.push('--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`);
      // Its log (info: the startup phases) to a file of its own.
      const out = openSync(join(dir, `${name}.log`), 'a');
      c.child = spawn(process.execPath, [...controllerNodeFlags(), ...heap, CONTROLLER, 'run', '--config', config], { stdio: ['ignore', out, 'inherit'] });
      closeSync(out);
      for (;;) {
        const ok = await fetch(`${c.http}/healthz`).then((r) => r.ok, () => false);
        if (ok) return performance.now() - started;
        if (c.child.exitCode !== null) throw new Error(`${name} exited ${c.child.exitCode}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
  await c.start();
  return c;
}

export function admin(c: Controller, dir: string): { client: Admin; metadata: Metadata } {
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${TOKEN}`);
  return { client: createClient(AdminService, c.grpc, credentials.createSsl(readFileSync(join(dir, 'tls', 'ca.pem')))), metadata };
}

/** A one-time enrollment token for each host, 50 calls at a time. */
async function enrollmentTokens(a: { client: Admin; metadata: Metadata }, hosts: readonly string[]): Promise<string[]> {
  const tokens: string[] = [];
  for (let i = 0; i < hosts.length; i += 50) {
    tokens.push(...await Promise.all(hosts.slice(i, i + 50).map(async (hostId) => (await a.client.createEnrollment({ hostId }, { metadata: a.metadata })).token)));
  }
  return tokens;
}

const hostsResources = (ids: string[]) => ids.map((id, i) => ({ kind: { case: 'host' as const, value: create(HostSchema, { id, subnetId: 's', catalog: 'standard', asn: 65000 + (i % 1000) }) } }));

export async function seedBase(a: { client: Admin; metadata: Metadata }): Promise<void> {
  await a.client.apply({ resources: [
    { kind: { case: 'tenant', value: create(TenantSchema, { id: 't', name: 't' }) } },
    { kind: { case: 'subnet', value: create(SubnetSchema, { id: 's', tenantId: 't', prefixV4: '10.0.0.0/16' }) } },
    { kind: { case: 'networkCatalog', value: create(NetworkCatalogSchema, {
      name: 'standard', bgpListen: BgpListen.PORT_179, multipath: Multipath.ECMP,
      networks: [{ name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 }],
    }) } },
    { kind: { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'clients', tenantId: 't', prefixes: Array.from({ length: 200 }, (_, i) => `172.16.${i}.0/24`) }) } },
    { kind: { case: 'acl', value: create(AclSchema, { subnetId: 's', rules: [{
      id: 'web', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }],
      source: { kind: { case: 'objectId', value: 'clients' } }, destination: { kind: { case: 'subnet', value: true } },
    }] }) } },
  ] }, { metadata: a.metadata });
}

/** Hosts h<from>..h<to-1>, 100 per transaction (etcd takes at most 128 operations in one). */
export async function seedHosts(a: { client: Admin; metadata: Metadata }, from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += 100) {
    const ids = Array.from({ length: Math.min(100, to - i) }, (_, k) => `h${i + k}`);
    await a.client.apply({ resources: hostsResources(ids) }, { metadata: a.metadata });
  }
}

/** Creates per second: `count` single-host creates from `clients` concurrent callers spread over the admins. */
async function createRate(admins: { client: Admin; metadata: Metadata }[], tag: string, count = 200, clients = 4): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    const a = admins[c % admins.length] as (typeof admins)[number];
    for (let i = next++; i < count; i = next++) {
      await a.client.createHost({ host: create(HostSchema, { id: `${tag}-${i}`, subnetId: 's', catalog: 'standard', asn: 64999 }) }, { metadata: a.metadata });
    }
  }));
  return count / ((performance.now() - started) / 1000);
}

class AgentsProcess {
  private readonly waiting: ((m: Record<string, unknown>) => void)[] = [];
  readonly child: ChildProcess;

  constructor() {
    // BENCH_PROFILE=DIR: their CPU profiles too (written when they exit).
    const prof = process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [];
    this.child = fork(AGENTS, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'], execArgv: [...process.execArgv, ...prof] });
    // They stand in for 10,000 machines of their own: at the lowest CPU priority (BENCH_AGENTS_NICE, 19 unless set) they take
    // the CPU the replicas and etcd leave, instead of an equal share of the two cores (a restarted replica's start, and the
    // survivor's handshakes, waited for theirs). Their own work still shares the cores: what they measure stays on the slow side.
    setPriority(this.child.pid ?? 0, Number(process.env.BENCH_AGENTS_NICE ?? 19));
    this.child.on('message', (m) => this.waiting.shift()?.(m as Record<string, unknown>));
  }

  ask(m: Record<string, unknown>): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.waiting.push((r) => (r.event === 'error' ? reject(new Error(String(r.message))) : resolve(r)));
      if (Object.keys(m).length > 0) this.child.send(m);
    });
  }
}

async function sqliteRates(dir: string, n: number): Promise<{ at100: number; atN: number }> {
  const c = await controller(dir, 'solo', `store: { path: ${join(dir, 'solo.db')} }`);
  try {
    const a = admin(c, dir);
    await seedBase(a);
    await seedHosts(a, 0, 100);
    const at100 = await createRate([a], 'sq100');
    await seedHosts(a, 100, n);
    const atN = await createRate([a], 'sqn');
    a.client.close();
    return { at100, atN };
  } finally {
    c.child.kill('SIGKILL');
  }
}

/** The replicas' store configuration: the cluster's members, a 5 s lease for their keys. */
export const replicaStore = (cluster: EtcdCluster): string => etcdStoreLine(cluster.endpoints, { leaseTtl: '5s' });

export async function fleetBench(n: number, log: (line: string) => void = () => undefined): Promise<FleetResult> {
  // BENCH_FLEET_ONLY=restart: seed, enroll and connect, then only the restart (no create rates, no changes, no SQLite).
  const restartOnly = process.env.BENCH_FLEET_ONLY === 'restart';
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-fleet-'));
  await initCa(join(dir, 'tls'), ['127.0.0.1']);
  const cluster = await EtcdCluster.start(join(dir, 'etcd'), `hnf${process.pid}`);
  const store = replicaStore(cluster);
  const replicas: Controller[] = [];
  const procs: AgentsProcess[] = [];
  try {
    replicas.push(await controller(dir, 'r1', store), await controller(dir, 'r2', store));
    const admins = replicas.map((r) => admin(r, dir));
    const a1 = admins[0] as (typeof admins)[number];
    await seedBase(a1);
    await seedHosts(a1, 0, 100);
    const etcdAt100 = restartOnly ? NaN : await createRate(admins, 'e100');
    log(`etcd: ${etcdAt100.toFixed(0)} creates/s at 100 hosts; seeding ${n} hosts`);
    await seedHosts(a1, 100, n);
    const etcdAtN = restartOnly ? NaN : await createRate(admins, 'en');
    log(`etcd: ${etcdAtN.toFixed(0)} creates/s at ${n} hosts`);

    const hostIds = Array.from({ length: n }, (_, i) => `h${i}`);
    const tokensAt = performance.now();
    const tokens = await enrollmentTokens(a1, hostIds);
    log(`${n} enrollment tokens made in ${(performance.now() - tokensAt).toFixed(0)} ms`);
    const rss = async () => (await Promise.all(replicas.map((r) => rssKb(r.child.pid)))).reduce((x, y) => x + y, 0);
    await new Promise((r) => setTimeout(r, 2000));
    const heapLines = async (when: string): Promise<void> => {
      for (const r of replicas) {
        const text = await fetch(`${r.http}/metrics`).then((x) => x.text(), () => '');
        const mb = (name: string) => (Number(new RegExp(`^hostnet_controller_${name} (\\S+)`, 'm').exec(text)?.[1] ?? NaN) / 1e6).toFixed(0);
        log(`${r.name} ${when}: RSS ${((await rssKb(r.child.pid)) / 1000).toFixed(0)} MB, heap used ${mb('nodejs_heap_size_used_bytes')} MB of ${mb('nodejs_heap_size_total_bytes')} MB, external ${mb('nodejs_external_memory_bytes')} MB`);
      }
    };
    const before = await rss();
    await heapLines('before the agents');
    const synced = performance.now();
    const per = Math.ceil(n / 2);
    for (let p = 0; p < 2; p++) {
      const proc = new AgentsProcess();
      procs.push(proc);
      await proc.ask({});
    }
    const started = await Promise.all(procs.map((proc, p) => proc.ask({
      cmd: 'start', hosts: hostIds.slice(p * per, (p + 1) * per), tokens: tokens.slice(p * per, (p + 1) * per),
      caPem: readFileSync(join(dir, 'tls', 'ca.pem'), 'utf8'), addresses: replicas.map((r) => r.agent), first: p,
    })));
    const syncMs = performance.now() - synced;
    log(`${n} agents enrolled (each its own key; slowest process ${Math.max(...started.map((r) => r.enrollMs as number)).toFixed(0)} ms) and synced in ${syncMs.toFixed(0)} ms`);
    await new Promise((r) => setTimeout(r, 2000));
    const afterConnect = await rss();
    await heapLines('2 s after the agents connected');

    const total = async (cpu: Promise<number>[]): Promise<number> => (await Promise.all(cpu)).reduce((a, b) => a + b, 0);
    /** CPU seconds so far, summed per group: the replicas, their main threads, the etcd members, the agents' processes. */
    const cpuOfAll = async (): Promise<{ replicas: number; mains: number; etcd: number; agents: number }> => {
      const [all, mains, etcd, agents] = await Promise.all([
        total(replicas.map((r) => cpuSeconds(r.child.pid))), total(replicas.map((r) => cpuSeconds(r.child.pid, true))),
        total(cluster.members.map((m) => cpuSeconds(m.child?.pid))), total(procs.map((p) => cpuSeconds(p.child.pid))),
      ]);
      return { replicas: all, mains, etcd, agents };
    };
    /** Keys etcd has written so far (its leader's count, read from every member's /metrics: the largest). */
    const etcdPuts = async (): Promise<number> => Math.max(...await Promise.all(cluster.endpoints.map((e) => fetch(`http://${e}/metrics`)
      .then((x) => x.text(), () => '').then((text) => Number(/^etcd_mvcc_put_total (\S+)/m.exec(text)?.[1] ?? NaN)))));
    const update: FleetResult['update'] = [];
    // BENCH_FLEET_CHANGES=K: K changes instead of 5 (each line says the replicas' RSS per agent after it: whether it grows with every change or steps once).
    const changes = restartOnly ? 0 : Number(process.env.BENCH_FLEET_CHANGES ?? 5);
    for (let k = 0; k < changes; k++) {
      const prefix = `172.17.${k}.0/24`;
      const t0 = performance.timeOrigin + performance.now();
      const cpu0 = await cpuOfAll();
      const puts0 = await etcdPuts();
      await a1.client.apply({ resources: [{ kind: { case: 'networkObject', value: create(NetworkObjectSchema, {
        id: 'clients', tenantId: 't', prefixes: [...Array.from({ length: 200 }, (_, i) => `172.16.${i}.0/24`), ...Array.from({ length: k + 1 }, (_, j) => `172.17.${j}.0/24`)],
      }) } }] }, { metadata: a1.metadata });
      const arrived = (await Promise.all(procs.map((p) => p.ask({ cmd: 'wait', prefix })))).flatMap((r) => (r.ms as number[]).map((x) => x - t0));
      // CPU seconds spent from the write until every agent had it: the replicas' own, and the simulated agents'.
      const cpu1 = await cpuOfAll();
      const spent = (group: keyof typeof cpu1): string => (cpu1[group] - cpu0[group]).toFixed(2);
      update.push({ p50Ms: pct(arrived, 0.5), p99Ms: pct(arrived, 0.99), lastMs: Math.max(...arrived) });
      const passes = await Promise.all(replicas.map(async (r) => {
        const text = await fetch(`${r.http}/metrics`).then((x) => x.text(), () => '');
        const ms = Number(/^hostnet_controller_compile_last_seconds (\S+)/m.exec(text)?.[1] ?? NaN) * 1000;
        const hosts = Number(/^hostnet_controller_compile_last_hosts (\S+)/m.exec(text)?.[1] ?? NaN);
        return `${r.name} ${hosts} hosts in ${ms.toFixed(0)} ms`;
      }));
      await new Promise((r) => setTimeout(r, 1000));
      // Keys written meanwhile: the change, and the rollout rows (sent, applied) the replicas flushed.
      const puts = (await etcdPuts()) - puts0;
      log(`change ${k + 1}: p50 ${pct(arrived, 0.5).toFixed(0)} ms, p99 ${pct(arrived, 0.99).toFixed(0)} ms (compile and write: ${passes.join(', ')}; CPU: replicas ${spent('replicas')} s `
        + `(their main threads ${spent('mains')} s), etcd ${spent('etcd')} s, agents ${spent('agents')} s; `
        + `replicas' RSS 1 s later ${(((await rss()) - before) / n).toFixed(0)} KB per agent; etcd keys written until then ${puts})`);
    }
    await new Promise((r) => setTimeout(r, 2000));
    const afterChanges = await rss();
    await heapLines('2 s after the changes');
    // The same 30 s later, nothing changing meanwhile (but the agents' heartbeats): what a replica holds between changes,
    // against what it held right after them (live, or garbage of the change passes V8 had not collected yet).
    await new Promise((r) => setTimeout(r, restartOnly ? 0 : 30_000));
    const settled = await rss();
    await heapLines('30 s later');
    if (process.env.BENCH_HEAP) {
      for (const r of replicas) r.child.kill('SIGUSR2');
      await new Promise((x) => setTimeout(x, 15_000));
    }

    // Every count the agents' processes answer, through one function: they report the streams that
    // ended since their last answer, so an answer read anywhere else would lose those.
    const endings = new Map<string, number>();
    let handshakesNow = { resumed: 0, full: 0 };
    /** The longest the agents' processes' event loops were held up since the last progress line (ms). */
    let lagMs = 0;
    const countAll = async (): Promise<number> => {
      const replies = await Promise.all(procs.map((p) => p.ask({ cmd: 'count' })));
      lagMs = Math.max(lagMs, ...replies.map((r) => r.lagMs as number));
      for (const r of replies) for (const [why, k] of Object.entries(r.endings as Record<string, number>)) endings.set(why, (endings.get(why) ?? 0) + k);
      handshakesNow = { resumed: replies.reduce((x, r) => x + (r.resumed as number), 0), full: replies.reduce((x, r) => x + (r.full as number), 0) };
      return replies.reduce((x, r) => x + (r.streaming as number), 0);
    };
    // Why streams end is counted from here on.
    await countAll();
    endings.clear();
    lagMs = 0;
    /** Waits until every agent streams again (120 s at most), saying every 5 s how many do, why streams ended meanwhile, and who had the CPU. */
    const untilAllStreaming = async (label: string, since: number, watched: Controller[]): Promise<number> => {
      let shown = performance.now();
      const who = (): { name: string; pid: number | undefined }[] => [
        ...watched.map((r) => ({ name: r.name, pid: r.child.pid })), ...procs.map((p, i) => ({ name: `agents${i + 1}`, pid: p.child.pid })),
        ...cluster.members.map((m) => ({ name: m.name.replace(/.*-/, ''), pid: m.child?.pid })),
      ];
      let cpu = await Promise.all(who().map((w) => cpuSeconds(w.pid)));
      const count = async (): Promise<number> => {
        const streaming = await countAll();
        if (performance.now() - shown >= 5000) {
          const now = await Promise.all(who().map((w) => cpuSeconds(w.pid)));
          const busy = who().map((w, i) => `${w.name} ${(((now[i] ?? 0) - (cpu[i] ?? 0)) / ((performance.now() - shown) / 1000) * 100).toFixed(0)}%`).join(' ');
          cpu = now;
          shown = performance.now();
          log(`${label} +${((shown - since) / 1000).toFixed(0)} s: ${streaming} streaming; CPU ${busy}; agents' event loops held up ${lagMs.toFixed(0)} ms at most; `
            + `ended meanwhile: ${[...endings].map(([why, k]) => `${k}x ${why}`).join('; ') || 'none'}`);
          endings.clear();
          lagMs = 0;
        }
        return streaming;
      };
      while ((await count()) < n && performance.now() - since < 120_000) await new Promise((r) => setTimeout(r, 100));
      return performance.now() - since;
    };

    // One replica of the two killed and brought back (as systemd restarts it): its agents move to the other meanwhile.
    const r2 = replicas[1] as Controller;
    let handshakes0 = handshakesNow;
    r2.child.kill('SIGKILL');
    const killed = performance.now();
    // Its agents' streams end at once (the kernel closes its sockets): seen ended before the 1 s until the restart.
    while ((await countAll()) === n && performance.now() - killed < 5000) await new Promise((r) => setTimeout(r, 20));
    await new Promise((r) => setTimeout(r, Math.max(0, killed + 1000 - performance.now())));
    const oneServingMs = await r2.start();
    const oneServingAfterKillMs = performance.now() - killed;
    const oneAllStreamingMs = await untilAllStreaming('one replica restarted', killed, replicas);
    log(`one replica restarted: ${r2.name} serving ${oneServingMs.toFixed(0)} ms after its spawn (${oneServingAfterKillMs.toFixed(0)} ms after the kill), all ${n} agents streaming `
      + `${oneAllStreamingMs.toFixed(0)} ms after the kill; agents' TLS handshakes meanwhile: ${handshakesNow.resumed - handshakes0.resumed} resumed, ${handshakesNow.full - handshakes0.full} full`);
    log(`one replica restarted, phases (${r2.name}'s log): ${await startupPhases(join(dir, `${r2.name}.log`))}`);

    if (process.env.BENCH_HEAP || process.env.BENCH_PROFILE) {
      // A clean exit writes what --heap-prof (in BENCH_CONTROLLER_FLAGS) or --cpu-prof sampled.
      await Promise.all(replicas.map((r) => new Promise((x) => { r.child.once('exit', x); r.child.kill('SIGTERM'); })));
    }
    // A member that died during the run (one did, once, cause unknown): say so, with the end of its log.
    for (const m of cluster.members.filter((x) => !x.child)) {
      const tail = (await readFile(join(cluster.dir, `${m.name}.log`), 'utf8').catch(() => '')).slice(-800);
      log(`etcd member ${m.name} is not running; its log ends: ${tail}`);
    }
    // Both replicas down, one back: every agent reconnects to it.
    handshakes0 = handshakesNow;
    for (const r of replicas) r.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1000));
    const restarted = performance.now();
    const r1 = replicas[0] as Controller;
    const servingMs = await r1.start();
    // Its RSS with the store loaded and no agent yet (their handshakes start as it serves): the base for its RSS per agent after the restart.
    const r1Serving = await rssKb(r1.child.pid);
    const allStreamingMs = await untilAllStreaming('restart', restarted, [r1]);
    log(`restart: serving after ${servingMs.toFixed(0)} ms, all ${n} agents streaming after ${allStreamingMs.toFixed(0)} ms; ${r1.name} used ${(await cpuSeconds(r1.child.pid)).toFixed(1)} CPU-s since its start; `
      + `agents' TLS handshakes meanwhile: ${handshakesNow.resumed - handshakes0.resumed} resumed, ${handshakesNow.full - handshakes0.full} full`);
    log(`restart phases (${r1.name}'s log): ${await startupPhases(join(dir, `${r1.name}.log`))}`);
    await new Promise((r) => setTimeout(r, 5000));
    const r1Restarted = await rssKb(r1.child.pid);
    log(`${r1.name} after the restart, every agent on it: RSS ${(r1Restarted / 1000).toFixed(0)} MB, `
      + `${((r1Restarted - r1Serving) / n).toFixed(0)} KB per agent over its RSS when it began serving (${(r1Serving / 1000).toFixed(0)} MB)`);
    for (const a of admins) a.client.close();

    const sqlite = restartOnly ? { at100: NaN, atN: NaN } : await sqliteRates(dir, n);
    log(`sqlite: ${sqlite.at100.toFixed(0)} creates/s at 100 hosts, ${sqlite.atN.toFixed(0)} at ${n}`);
    return {
      agents: n, update,
      rssKbPerAgent: { afterConnect: (afterConnect - before) / n, afterChanges: (afterChanges - before) / n, settled: (settled - before) / n },
      creates: { etcd: { at100: etcdAt100, atN: etcdAtN }, sqlite },
      restart: { servingMs, allStreamingMs }, oneRestart: { servingMs: oneServingMs, allStreamingMs: oneAllStreamingMs }, syncMs,
    };
  } finally {
    // With BENCH_PROFILE the agents get 30 s to exit on their own (and write their profiles).
    await Promise.all(procs.map((p) => new Promise((x) => {
      const kill = setTimeout(() => { p.child.kill('SIGKILL'); x(undefined); }, process.env.BENCH_PROFILE ? 30_000 : 0);
      p.child.once('exit', () => { clearTimeout(kill); x(undefined); });
      p.child.send({ cmd: 'stop' });
    })));
    if (process.env.BENCH_PROFILE) {
      await Promise.all(replicas.filter((r) => r.child.exitCode === null).map((r) => new Promise((x) => { r.child.once('exit', x); r.child.kill('SIGTERM'); })));
    }
    for (const r of replicas) r.child.kill('SIGKILL');
    await cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
