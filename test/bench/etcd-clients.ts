// Our etcd feed against npm `etcd3` on the paths a controller depends on,
// on a real 3-member cluster: each client keeps a view of one key prefix
// (list, then watch), and after each fault the view is compared with etcd.
// `etcd3` is not a dependency of the project: the bench installs it into a
// directory of its own (ETCD3_DIR, default a temporary one) from the registry.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EtcdCluster } from '../../lab/etcd.js';
import { EtcdClient, bytes, prefixEnd, text } from '../../controller/src/store/etcd/client.js';
import { PrefixFeed } from '../../controller/src/store/etcd/feed.js';
import { Event_EventType } from '../../proto/gen/mvccpb/kv_pb.js';
import { silentLogger } from '../../common/log.js';

/** A client's view of the prefix: key -> value, and when it last changed. */
interface View {
  readonly name: string;
  readonly kv: Map<string, string>;
  /** Whether the client said it is not current (an error, a disconnect, no leader). */
  noticed: string[];
  close(): Promise<void>;
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly client: string;
  /** Milliseconds from the fault's end until the view equalled etcd, or undefined when it never did within the wait. */
  readonly convergedMs: number | undefined;
  /** Keys whose value differed from etcd's at the end. */
  readonly wrongKeys: number;
  /** What the client told its user (errors, disconnects), in order. */
  readonly noticed: string[];
}

type Etcd3Module = {
  Etcd3: new (o: { hosts: string[]; grpcOptions?: Record<string, unknown> }) => {
    watch(): { prefix(p: string): { startRevision(r: string): { create(): Promise<Etcd3Watcher> } } };
    getAll(): { prefix(p: string): { exec(): Promise<{ header: { revision: string }; kvs: { key: Buffer; value: Buffer }[] }> } };
    close(): void;
  };
};
interface Etcd3Watcher {
  on(ev: 'put', f: (kv: { key: Buffer; value: Buffer }) => void): void;
  on(ev: 'delete', f: (kv: { key: Buffer }) => void): void;
  on(ev: 'error' | 'disconnected', f: (e: Error) => void): void;
  on(ev: 'connected', f: () => void): void;
  cancel(): Promise<void>;
}

function loadEtcd3(): Etcd3Module {
  const dir = process.env.ETCD3_DIR ?? mkdtempSync(join(tmpdir(), 'hostnet-etcd3-'));
  if (!existsSync(join(dir, 'node_modules', 'etcd3'))) {
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-save', '--prefix', dir, 'etcd3@1.1.2'], { stdio: 'ignore' });
  }
  return createRequire(join(dir, 'package.json'))('etcd3') as Etcd3Module;
}

async function etcd3View(mod: Etcd3Module, endpoints: string[], prefix: string): Promise<View> {
  const client = new mod.Etcd3({ hosts: endpoints.map((e) => `http://${e}`) });
  const kv = new Map<string, string>();
  const noticed: string[] = [];
  const all = await client.getAll().prefix(prefix).exec();
  for (const x of all.kvs) kv.set(x.key.toString(), x.value.toString());
  const w = await client.watch().prefix(prefix).startRevision(String(Number(all.header.revision) + 1)).create();
  w.on('put', (x) => kv.set(x.key.toString(), x.value.toString()));
  w.on('delete', (x) => kv.delete(x.key.toString()));
  w.on('error', (e) => noticed.push(`error: ${e.message}`));
  w.on('disconnected', (e) => noticed.push(`disconnected: ${e.message}`));
  return { name: 'etcd3 1.1.2', kv, noticed, close: async () => { await w.cancel().catch(() => undefined); client.close(); } };
}

async function ourView(endpoints: string[], prefix: string): Promise<View> {
  const client = new EtcdClient({ endpoints, callTimeoutMs: 2000 });
  const kv = new Map<string, string>();
  const noticed: string[] = [];
  const feed = new PrefixFeed(client, prefix, {
    reset(kvs, _rev, why) {
      kv.clear();
      for (const x of kvs) kv.set(text(x.key), text(x.value));
      if (why === 'compacted') noticed.push('relisted after a compaction');
    },
    events(_rev, events) {
      for (const e of events) {
        if (!e.kv) continue;
        if (e.type === Event_EventType.DELETE) kv.delete(text(e.kv.key));
        else kv.set(text(e.kv.key), text(e.kv.value));
      }
    },
    progress() {},
    live(live, why) { if (!live && noticed.at(-1) !== `not live: ${why}`) noticed.push(`not live: ${why}`); },
  }, silentLogger(), 1000);
  await feed.start();
  return { name: 'hostnet feed', kv, noticed, close: async () => { await feed.stop(); client.close(); } };
}

async function truth(writer: EtcdClient, prefix: string): Promise<Map<string, string>> {
  const r = await writer.range(bytes(prefix), prefixEnd(prefix), { budgetMs: 20_000 });
  return new Map(r.kvs.map((x) => [text(x.key), text(x.value)]));
}

function wrong(view: Map<string, string>, want: Map<string, string>): number {
  let n = 0;
  for (const [k, v] of want) if (view.get(k) !== v) n++;
  for (const k of view.keys()) if (!want.has(k)) n++;
  return n;
}

/** Writes `count` puts over `keys` keys through `writer` (retrying each until acknowledged). */
async function write(writer: EtcdClient, prefix: string, count: number, tag: string): Promise<number> {
  let rev = 0;
  for (let i = 0; i < count; i++) {
    for (;;) {
      try {
        const r = await writer.txn({ success: [{ request: { case: 'requestPut', value: { key: bytes(`${prefix}k${i % 50}`), value: bytes(`${tag}-${i}`) } } }] });
        rev = Number(r.header?.revision ?? 0n);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return rev;
}

async function settle(views: View[], writer: EtcdClient, prefix: string, scenario: string, waitMs: number): Promise<ScenarioResult[]> {
  const want = await truth(writer, prefix);
  const start = Date.now();
  const converged = new Map<View, number>();
  while (Date.now() - start < waitMs && converged.size < views.length) {
    for (const v of views) if (!converged.has(v) && wrong(v.kv, want) === 0) converged.set(v, Date.now() - start);
    await new Promise((r) => setTimeout(r, 50));
  }
  return views.map((v) => ({ scenario, client: v.name, convergedMs: converged.get(v), wrongKeys: wrong(v.kv, want), noticed: [...v.noticed] }));
}

/**
 * Three faults, each on a fresh prefix with both clients watching through
 * one member (m1) only, so that each fault hits both watches the same way:
 * - m1 stopped (SIGSTOP) for 8 s while 300 writes and a compaction happen
 *   through the others, then continued (a stalled member, a missed compaction);
 * - m1 killed (SIGKILL) while 300 writes happen, started again after 8 s;
 * - the same with a compaction while m1 is away (the watch resumes from a
 *   compacted revision);
 * - m1 cut off from the quorum (the two others stopped) for 8 s: does the
 *   client learn that its view may be stale?
 */
export async function etcdClientsBench(): Promise<ScenarioResult[]> {
  const mod = loadEtcd3();
  const cluster = await EtcdCluster.start(mkdtempSync(join(tmpdir(), 'hostnet-bench-etcd-')), 'hnbench');
  const [m1, m2, m3] = cluster.members;
  if (!m1 || !m2 || !m3) throw new Error('three members');
  const writer = new EtcdClient({ endpoints: [m2.endpoint, m3.endpoint], callTimeoutMs: 2000 });
  const results: ScenarioResult[] = [];
  const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));
  try {
    const scenario = async (name: string, prefix: string, fault: (prefix: string) => Promise<void>, waitMs = 20_000) => {
      await write(writer, prefix, 50, 'before');
      const views = [await etcd3View(mod, [m1.endpoint], prefix), await ourView([m1.endpoint], prefix)];
      try {
        await pause(500);
        await fault(prefix);
        results.push(...await settle(views, writer, prefix, name, waitMs));
      } finally {
        await Promise.all(views.map((v) => v.close()));
      }
    };
    /** While m1 is away: 300 writes through the others (and a compaction to the last), then the rest of 8 s. */
    const meanwhile = async (prefix: string, compact: boolean) => {
      const t0 = Date.now();
      const rev = await write(writer, prefix, 300, 'during');
      if (compact) await writer.compact(rev);
      await pause(Math.max(0, 8000 - (Date.now() - t0)));
    };
    await scenario('member stopped 8 s, 300 writes and a compaction meanwhile', '/bench/stop/', async (prefix) => {
      await cluster.signal(m1.name, 'SIGSTOP');
      await meanwhile(prefix, true);
      await cluster.signal(m1.name, 'SIGCONT');
    });
    for (const [compact, name, prefix] of [[false, 'member killed, 300 writes, started again after 8 s', '/bench/kill/'],
      [true, 'member killed, 300 writes and a compaction, started again after 8 s', '/bench/killc/']] as const) {
      await scenario(name, prefix, async () => {
        await cluster.signal(m1.name, 'SIGKILL');
        await meanwhile(prefix, compact);
        await cluster.restart(m1.name);
      }, 30_000);
      await cluster.waitLeader(30_000);
    }
    // Minority: the view cannot be wrong (nothing can be written), the question is whether the client says so.
    const prefix = '/bench/minority/';
    await write(writer, prefix, 50, 'before');
    const views = [await etcd3View(mod, [m1.endpoint], prefix), await ourView([m1.endpoint], prefix)];
    await pause(500);
    await cluster.signal(m2.name, 'SIGSTOP');
    await cluster.signal(m3.name, 'SIGSTOP');
    await pause(8000);
    for (const v of views) results.push({ scenario: 'member cut off from the quorum for 8 s', client: v.name, convergedMs: undefined, wrongKeys: 0, noticed: [...v.noticed] });
    await cluster.signal(m2.name, 'SIGCONT');
    await cluster.signal(m3.name, 'SIGCONT');
    await Promise.all(views.map((v) => v.close()));
  } finally {
    writer.close();
    await cluster.stop();
  }
  return results;
}
