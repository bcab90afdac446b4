// Sync with real grpc-js clients on loopback: a snapshot on connect, then
// only the delta after an object change; a NACK shows in rollout; a
// reconnect with known versions gets only what changed; rapid changes
// coalesce; a client that never acknowledges gets one update, no more; an
// answered update costs one rollout row written, not two.
import t from 'tap';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { addService, createClient } from '../../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse, SyncResponseSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { AclSchema, Action, HostSchema, NetworkObjectSchema, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { type SqliteStore, openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { decodeRollout, type StatusStore } from '../../../controller/src/store/status.js';
import { Agents } from '../../../controller/src/sync/agents.js';
import { OPERATOR, PUBLIC_POOL, seed, putHost } from '../../fixtures/controller-seed.js';
import { bind } from '../../../controller/src/server.js';
import { tempDir } from '../../fixtures/temp.js';

const log = silentLogger();

/** An agents' side on a fresh store; `o.status` wraps the store's status (default: the store itself). */
async function setup(o: { status?: (store: SqliteStore) => StatusStore; rolloutFlushMs?: number } = {}) {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: o.status?.(store) ?? store, log, debounceMs: 30, rolloutFlushMs: o.rolloutFlushMs });
  const server = new Server();
  addService(server, AgentService, agents.service(), log);
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure());
  const setPrefixes = async (prefixes: string[]): Promise<void> => {
    await store.transact((tx) => tx.put('object', 'a-clients', create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes })));
  };
  return { store, agents, client, setPrefixes, close: async () => { client.close(); server.forceShutdown(); await agents.close(); await store.close(); } };
}

/** Opens a Sync stream, collecting what arrives. */
function open(client: ReturnType<typeof createClient<typeof AgentService extends { method: infer M } ? M : never>>, hello: { firewallVersion?: string; routingVersion?: string } = {}, hostId = 'host-a1') {
  const got: SyncResponse[] = [];
  const call = client.sync();
  call.on('data', (m: SyncResponse) => got.push(m));
  call.on('error', () => undefined);
  call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId, agentVersion: 'test', ...hello } } }));
  const waitFor = async (n: number, ms = 3000): Promise<SyncResponse> => {
    const until = Date.now() + ms;
    while (got.length < n && Date.now() < until) await new Promise((r) => setTimeout(r, 10));
    const m = got[n - 1];
    if (!m) throw new Error(`expected ${n} updates, got ${got.length}`);
    return m;
  };
  const ack = (version: string): void => { call.write(create(SyncRequestSchema, { message: { case: 'ack', value: { version } } })); };
  const nack = (version: string, message: string): void => {
    call.write(create(SyncRequestSchema, { message: { case: 'nack', value: { version, error: { reason: 'NFT_REJECTED', message } } } }));
  };
  return { call, got, waitFor, ack, nack };
}

void t.test('snapshot, then only the delta; NACK in rollout; reconnect', async (t) => {
  const s = await setup();
  t.teardown(() => s.close());
  const a = open(s.client);
  const first = await a.waitFor(1);
  t.equal(first.update.case, 'snapshot', 'a snapshot on connect');
  const snap = first.update.case === 'snapshot' ? first.update.value : undefined;
  t.same(snap?.firewall?.objects.map((o) => o.prefixes), [['10.9.0.0/24']]);
  t.equal(snap?.routing?.asn, 65101);
  a.ack(first.version);
  await new Promise((r) => setTimeout(r, 50));
  t.match(s.agents.rolloutState().find((r) => r.hostId === 'host-a1'), { appliedVersion: first.version, sentVersion: first.version, connected: true });

  await s.setPrefixes(['10.9.0.0/24', '10.9.7.0/24']);
  const second = await a.waitFor(2);
  t.equal(second.update.case, 'delta', 'after an object change: a delta');
  const d = second.update.case === 'delta' ? second.update.value : undefined;
  t.same(d?.firewall?.objectChanges.map((c) => [c.id, c.added, c.removed]), [['a-clients', ['10.9.7.0/24'], []]], 'only the added prefix');
  t.equal(d?.firewall?.rules, undefined, 'no rules');
  t.equal(d?.routing, undefined, 'routing did not change');
  t.equal(d?.firewall?.baseVersion, snap?.firewall?.version, 'based on what the agent has');

  a.nack(second.version, 'nft: Could not process rule: Operation not permitted');
  await new Promise((r) => setTimeout(r, 50));
  const r = s.agents.rolloutState().find((x) => x.hostId === 'host-a1');
  t.equal(r?.nackedVersion, `${d?.firewall?.version ?? ''}.${snap?.routing?.version ?? ''}`, 'the NACK shows in rollout');
  t.match(r?.nackError?.message, /Operation not permitted/, 'with the agent\'s error');
  t.equal(r?.appliedVersion, first.version, 'applied stays the previous version');
  t.equal(a.got.length, 2, 'the refused version is not resent by itself');
  a.call.end();

  // Reconnect knowing the first versions: the change since then only.
  const fw = snap?.firewall?.version ?? '';
  const rt = snap?.routing?.version ?? '';
  await new Promise((res) => setTimeout(res, 50));
  const b = open(s.client, { firewallVersion: fw, routingVersion: rt });
  const again = await b.waitFor(1);
  t.equal(again.update.case, 'delta', 'a reconnect with known versions gets a delta');
  b.ack(again.version);
  b.call.end();
  await new Promise((res) => setTimeout(res, 50));
  const row = () => s.agents.rolloutState().find((x) => x.hostId === 'host-a1');
  const before = row()?.updatedAt.getTime();
  const c = open(s.client, { firewallVersion: d?.firewall?.version ?? '', routingVersion: rt });
  await new Promise((res) => setTimeout(res, 200));
  t.equal(c.got.length, 0, 'an agent that is up to date gets nothing');
  t.match(row(), { connected: true, appliedVersion: `${d?.firewall?.version ?? ''}.${rt}` }, 'it shows connected, with what it applied');
  t.equal(row()?.updatedAt.getTime(), before, 'and its rollout row is not written again (10,000 of them after a restart)');
  c.call.end();
});

void t.test('rapid changes coalesce; a slow agent holds one update', async (t) => {
  const s = await setup();
  t.teardown(() => s.close());
  const a = open(s.client);
  const first = await a.waitFor(1);
  a.ack(first.version);
  // A burst: the store commits each change and calls its watchers before the
  // await returns, with no timer between, so all ten land in one debounce window
  // however slow the machine is (2 ms sleeps between them raced the 30 ms window).
  for (let i = 1; i <= 10; i++) await s.setPrefixes(['10.9.0.0/24', `10.9.${i}.0/24`]);
  const last = await a.waitFor(2);
  await new Promise((r) => setTimeout(r, 100));
  t.equal(a.got.length, 2, 'ten rapid changes: one update');
  const d = last.update.case === 'delta' ? last.update.value.firewall : undefined;
  t.same(d?.objectChanges[0]?.added, ['10.9.10.0/24'], 'carrying the latest state');

  // Not acknowledged: nothing more is written, however many changes follow.
  const encodes = s.agents.encodes;
  for (let i = 11; i <= 60; i++) {
    await s.setPrefixes(['10.9.0.0/24', `10.9.${i}.0/24`]);
    await new Promise((r) => setTimeout(r, 35));
  }
  t.equal(a.got.length, 2, 'a slow agent is sent nothing more while an update is in flight');
  t.equal(s.agents.encodes, encodes, 'and nothing is encoded or buffered for it');
  a.ack(last.version);
  const caughtUp = await a.waitFor(3);
  const d3 = caughtUp.update.case === 'delta' ? caughtUp.update.value.firewall : undefined;
  t.same(d3?.objectChanges[0]?.added, ['10.9.60.0/24'], 'after the ACK it gets the latest state at once');
  a.call.end();
});

void t.test('an answered update costs one rollout row; an unanswered one is written once it waited, or when its agent leaves', async (t) => {
  // What the other replicas would read: every rollout row written to the status store, and when.
  const written: { at: number; hostId: string; sent: string; applied: string }[] = [];
  const recorded = (store: SqliteStore): StatusStore => ({
    load: (on) => store.load(on),
    save: async (records) => {
      for (const r of records) {
        if (r.kind !== 'rollout' || !r.value) continue;
        const row = decodeRollout(r.value);
        written.push({ at: Date.now(), hostId: r.hostId, sent: row.sentVersion, applied: row.appliedVersion });
      }
      await store.save(records);
    },
  });
  // Batches every 250 ms: a row changed only by a send waits four of them (1 s).
  const s = await setup({ status: recorded, rolloutFlushMs: 250 });
  t.teardown(() => s.close());
  await s.store.transact((tx) => {
    for (const id of ['host-a2', 'host-a3']) putHost(tx, create(HostSchema, { id, subnetId: 'a-web', catalog: 'standard', asn: 65110 }), OPERATOR, false);
  });

  const answering = open(s.client, {}, 'host-a1');
  const silent = open(s.client, {}, 'host-a2');
  const leaving = open(s.client, {}, 'host-a3');
  const first = await answering.waitFor(1);
  const unanswered = await silent.waitFor(1);
  const arrived = Date.now();
  const left = await leaving.waitFor(1);
  leaving.call.end();
  // The answer comes after a batch went (before the wait is over).
  await new Promise((r) => setTimeout(r, 400));
  answering.ack(first.version);
  const until = Date.now() + 5000;
  while (!written.some((w) => w.hostId === 'host-a2') && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  const rows = (host: string) => written.filter((w) => w.hostId === host).map(({ sent, applied }) => ({ sent, applied }));
  t.same(rows('host-a1'), [{ sent: first.version, applied: first.version }], 'the answered update: one row with the send and the ack');
  t.same(rows('host-a2'), [{ sent: unanswered.version, applied: '' }], 'the unanswered one: its send alone');
  const at = written.find((w) => w.hostId === 'host-a2')?.at ?? NaN;
  t.ok(at - arrived >= 500, `written after it waited (${at - arrived} ms after the agent had it; the wait is 1,000 ms)`);
  t.same(rows('host-a3'), [{ sent: left.version, applied: '' }], 'the one whose agent left: its send');
  const order = (host: string) => written.findIndex((w) => w.hostId === host);
  t.ok(order('host-a3') < order('host-a2'), 'written when its agent left, not after the wait');
  answering.call.end();
  silent.call.end();
});

void t.test('the first message must be a Hello for a known host', async (t) => {
  const s = await setup();
  t.teardown(() => s.close());
  const call = s.client.sync();
  const err = new Promise<Error>((resolve) => call.on('error', resolve));
  call.on('data', () => undefined);
  call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'ghost' } } }));
  t.match(String((await err).message), /host\/ghost is not known/);
});

void t.test('rollout state survives a controller restart (persisted in batches)', async (t) => {
  const path = join(await tempDir(t, 'hostnet-rollout'), 'hostnet.db');
  const store = openSqliteStore(path);
  await seed(store);
  const agents = await Agents.open({ store, status: store, log, rolloutFlushMs: 50 });
  const server = new Server();
  addService(server, AgentService, agents.service(), log);
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure());
  const a = open(client);
  const first = await a.waitFor(1);
  a.nack(first.version, 'nft: Could not process rule: No such file or directory');
  await new Promise((r) => setTimeout(r, 200));
  a.call.end();
  client.close();
  server.forceShutdown();
  await agents.close();
  await store.close();

  const reopened = openSqliteStore(path);
  const again = await Agents.open({ store: reopened, status: reopened, log });
  const r = again.rolloutState().find((x) => x.hostId === 'host-a1');
  t.equal(r?.sentVersion, first.version, 'what was sent');
  t.equal(r?.nackedVersion, first.version, 'what was refused (a snapshot: its id is the version)');
  t.match(r?.nackError?.message, /No such file or directory/, 'and why');
  t.equal(r?.connected, false, 'not connected after the restart');
  await again.close();
  await reopened.close();
});

void t.test('hosts needing the same update share one encoding', async (t) => {
  const s = await setup();
  t.teardown(() => s.close());
  await s.store.transact((tx) => {
    for (const id of ['host-a2', 'host-a3']) putHost(tx, create(HostSchema, { id, subnetId: 'a-web', catalog: 'standard', asn: 65110 }), OPERATOR, false);
  });
  const streams = ['host-a1', 'host-a2', 'host-a3'].map((id) => open(s.client, {}, id));
  for (const a of streams) a.ack((await a.waitFor(1)).version);
  await new Promise((r) => setTimeout(r, 50));
  const before = s.agents.encodes;
  await s.setPrefixes(['10.9.0.0/24', '10.9.5.0/24']);
  const updates = await Promise.all(streams.map((a) => a.waitFor(2)));
  t.equal(s.agents.encodes - before, 1, 'one encoding for three agents');
  const bytes = updates.map((u) => Buffer.from(toBinary(SyncResponseSchema, u)).toString('hex'));
  t.equal(new Set(bytes).size, 1, 'the three agents got the very same bytes');
  t.equal(updates[0]?.update.case, 'delta');
  for (const a of streams) a.call.end();
});

void t.test('a change compiles only the hosts it touches, and reaches every one of them', async (t) => {
  const s = await setup();
  t.teardown(() => s.close());
  // Three more hosts in a-web, two in b-db, one in a-web on another catalog.
  await s.store.transact((tx) => {
    for (const id of ['host-a2', 'host-a3', 'host-a4']) putHost(tx, create(HostSchema, { id, subnetId: 'a-web', catalog: 'standard', asn: 65110 }), OPERATOR, false);
    for (const id of ['host-b1', 'host-b2']) putHost(tx, create(HostSchema, { id, subnetId: 'b-db', catalog: 'standard', asn: 65120 }), OPERATOR, false);
    putHost(tx, create(HostSchema, { id: 'host-a5', subnetId: 'a-web', catalog: 'with-public', asn: 65130 }), OPERATOR, false, { publicPool: PUBLIC_POOL });
  });
  const settle = () => new Promise((r) => setTimeout(r, 150));
  await settle();
  const versions = () => new Map(['host-a1', 'host-a2', 'host-a3', 'host-a4', 'host-a5', 'host-b1', 'host-b2'].map((h) => [h, s.agents.desiredVersion(h)]));
  const moved = (before: Map<string, string | undefined>) => [...versions()].filter(([h, v]) => before.get(h) !== v).map(([h]) => h);
  const compiled = async (what: string, change: () => Promise<unknown>): Promise<{ compilations: number; moved: string[] }> => {
    const before = versions();
    const n = s.agents.compilations;
    await change();
    await settle();
    t.comment(`${what}: ${s.agents.compilations - n} compilations`);
    return { compilations: s.agents.compilations - n, moved: moved(before) };
  };

  let r = await compiled('tenant a\'s object', () => s.setPrefixes(['10.9.0.0/24', '10.9.3.0/24']));
  t.same(r.moved, ['host-a1', 'host-a2', 'host-a3', 'host-a4', 'host-a5'], 'every host whose ACL uses the object moved');
  t.equal(r.compilations, 5, 'and only they were compiled');
  r = await compiled('tenant b\'s object', () => s.store.transact((tx) => tx.put('object', 'b-clients', create(NetworkObjectSchema, { id: 'b-clients', tenantId: 'tenant-b', prefixes: ['10.8.1.0/24'] }))));
  t.same(r, { compilations: 0, moved: [] }, 'an object no ACL uses compiles nothing');
  r = await compiled('the with-public catalog', () => s.store.transact((tx) => {
    const c = tx.get('catalog', 'with-public')?.value;
    if (c) tx.put('catalog', 'with-public', { ...c, networks: c.networks.map((n) => ({ ...n, routeTag: n.routeTag + 1 })) });
  }));
  t.same(r, { compilations: 1, moved: ['host-a5'] }, 'a catalog: only the hosts on it');
  r = await compiled('one host', () => s.store.transact((tx) => {
    const h = tx.get('host', 'host-b2')?.value;
    if (h) tx.put('host', 'host-b2', { ...h, asn: 65121 });
  }));
  t.same(r, { compilations: 1, moved: ['host-b2'] }, 'a host: only itself');
  r = await compiled('subnet a-web used as a source', () => s.store.transact((tx) => {
    tx.put('acl', 'b-db', create(AclSchema, { subnetId: 'b-db', rules: [{ id: 'from-a', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 5432 }], source: { kind: { case: 'subnetId', value: 'a-web' } }, destination: { kind: { case: 'subnet', value: true } } }] }));
  }));
  t.same(r.moved, ['host-b1', 'host-b2'], 'b-db\'s ACL: b-db\'s hosts');
  r = await compiled('a-web\'s prefix', () => s.store.transact((tx) => {
    const sub = tx.get('subnet', 'a-web')?.value;
    if (sub) tx.put('subnet', 'a-web', { ...sub, name: 'web2' });
  }));
  t.equal(r.compilations, 7, 'a subnet: its hosts and the hosts of the subnets whose ACL names it as a source');
  r = await compiled('a deleted host', () => s.store.transact((tx) => tx.delete('host', 'host-a4')));
  t.same(r, { compilations: 0, moved: ['host-a4'] }, 'a deleted host is forgotten, nothing compiled');
});

void t.test('a first pass in chunks (a restarted replica): every host listed at once, each compiled as the pass reaches it', async (t) => {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const ids = Array.from({ length: 20 }, (_, i) => `host-c${String(i).padStart(2, '0')}`);
  await store.transact((tx) => {
    for (const id of ids) putHost(tx, create(HostSchema, { id, subnetId: 'a-web', catalog: 'standard', asn: 65110 }), OPERATOR, false);
  });
  const agents = await Agents.open({ store, status: store, log }, { chunk: 5 });
  t.teardown(async () => { await agents.close(); await store.close(); });
  // Synchronously after open: the first chunk only, but the dashboard lists every host.
  t.equal(agents.rolloutState().length, 5, 'the first chunk is compiled before open returns');
  t.equal(agents.hosts().length, ids.length + 1, 'every host of the store is listed from the start');
  await agents.compiled;
  t.equal(agents.rolloutState().length, ids.length + 1, 'then every host');
  t.ok(agents.rolloutState().every((r) => r.desiredVersion !== ''), 'each with its desired version');
  const server = new Server();
  addService(server, AgentService, agents.service(), log);
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure());
  t.teardown(() => { client.close(); server.forceShutdown(); });
  const last = open(client, {}, ids[ids.length - 1]);
  t.equal((await last.waitFor(1)).update.case, 'snapshot', 'an agent of the last chunk gets its snapshot');
  last.call.end();
});

void t.test('a deferred first pass (the controller\'s start): nothing compiled until started, then every host', async (t) => {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: store, log }, { chunk: 5, deferFirstPass: true });
  t.teardown(async () => { await agents.close(); await store.close(); });
  await new Promise((r) => setTimeout(r, 50));
  t.ok(agents.rolloutState().every((r) => r.desiredVersion === ''), 'no host compiled while the controller binds its listeners');
  agents.startFirstPass();
  await agents.compiled;
  t.ok(agents.rolloutState().length > 0 && agents.rolloutState().every((r) => r.desiredVersion !== ''), 'every host compiled once started');
});
