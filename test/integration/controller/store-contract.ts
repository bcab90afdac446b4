// The store contract, run against both engines: SQLite (a real file) and
// etcd (a real 3-member cluster on loopback). Whatever the controller relies
// on is here: reads at a revision, transactions all-or-nothing, a
// transaction's reads see its own writes, no lost update under concurrency,
// the change feed carrying exactly each committed transaction, in order.
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { createLogger, silentLogger } from '../../../common/log.js';
import type { HostnetError } from '../../../proto/grpc/errors.js';
import { NetworkObjectSchema, TenantSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import type { ChangeBatch, Store } from '../../../controller/src/store/store.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { openEtcdStore } from '../../../controller/src/store/etcd/store.js';
import { EtcdClient } from '../../../controller/src/store/etcd/client.js';
import { EtcdCluster } from '../../../lab/etcd.js';

const log = silentLogger();
const tenant = (id: string, name = id) => create(TenantSchema, { id, name });
const object = (id: string, prefixes: string[]) => create(NetworkObjectSchema, { id, tenantId: 't', prefixes });

interface Engine {
  name: string;
  /** A fresh, empty store. */
  open(t: Test): Promise<Store>;
}

async function contract(t: Test, engine: Engine): Promise<void> {
  await t.test(`${engine.name}: writes, reads, revisions`, async (t) => {
    const store = await engine.open(t);
    const r0 = store.revision();
    t.equal((await store.transact((tx) => tx.list('tenant'))).revision, r0, 'a transaction without writes commits nothing');
    const w = await store.transact((tx) => {
      tx.put('tenant', 'b', tenant('b'));
      tx.put('tenant', 'a', tenant('a'));
      return 'done';
    });
    t.equal(w.result, 'done', 'the function\'s result comes back');
    t.ok(w.revision > r0, 'a new revision');
    t.equal(store.revision(), w.revision, 'reads see it once transact resolves');
    t.same(store.list('tenant').map((s) => s.key), ['a', 'b'], 'lists are sorted by key');
    const a = store.get('tenant', 'a');
    t.equal(a?.revision, w.revision, 'each resource carries the revision that wrote it');
    t.equal(a?.value.revision, BigInt(w.revision), 'also inside the message');
    const w2 = await store.transact((tx) => tx.put('tenant', 'a', tenant('a', 'renamed')));
    t.equal(store.get('tenant', 'a')?.value.name, 'renamed');
    t.equal(store.get('tenant', 'b')?.revision, w.revision, 'an untouched resource keeps its revision');
    t.ok(w2.revision > w.revision);
    const d = await store.transact((tx) => [tx.delete('tenant', 'b'), tx.delete('tenant', 'nope')]);
    t.same(d.result, [true, false], 'delete says whether something was there');
    t.equal(store.get('tenant', 'b'), undefined);
    t.equal(store.list('tenant').length, 1);
  });

  await t.test(`${engine.name}: a transaction that throws writes nothing; reads see its own writes`, async (t) => {
    const store = await engine.open(t);
    await store.transact((tx) => tx.put('tenant', 'a', tenant('a')));
    const before = store.revision();
    await t.rejects(store.transact((tx) => {
      tx.put('tenant', 'x', tenant('x'));
      tx.delete('tenant', 'a');
      throw new Error('refused');
    }), /refused/, 'the error comes back');
    t.equal(store.revision(), before, 'no new revision');
    t.ok(store.get('tenant', 'a'), 'and nothing changed');
    t.equal(store.get('tenant', 'x'), undefined);
    const seen = await store.transact((tx) => {
      tx.put('tenant', 'c', tenant('c'));
      tx.delete('tenant', 'a');
      return { c: tx.get('tenant', 'c')?.key, a: tx.get('tenant', 'a'), list: tx.list('tenant').map((s) => s.key) };
    });
    t.same(seen.result, { c: 'c', a: undefined, list: ['c'] }, 'get and list inside see the transaction\'s writes');
  });

  await t.test(`${engine.name}: the change feed carries each commit once, in order, with what it changed`, async (t) => {
    const store = await engine.open(t);
    const batches: ChangeBatch[] = [];
    const stop = store.watch(store.revision(), (b) => batches.push(b));
    const r1 = (await store.transact((tx) => { tx.put('tenant', 't', tenant('t')); tx.put('object', 'o1', object('o1', ['10.0.0.0/8'])); })).revision;
    const r2 = (await store.transact((tx) => { tx.put('object', 'o1', object('o1', ['10.0.0.0/16'])); tx.delete('tenant', 't'); })).revision;
    await store.transact(() => undefined);
    await new Promise((r) => setTimeout(r, 100));
    const sorted = (b: ChangeBatch | undefined) => [...(b?.changes ?? [])].map((c) => `${c.op} ${c.kind}/${c.key}@${c.revision}`).sort();
    t.equal(batches.length, 2, 'one batch per committed transaction (none for an empty one)');
    t.same(sorted(batches[0]), [`put object/o1@${r1}`, `put tenant/t@${r1}`]);
    t.same(sorted(batches[1]), [`delete tenant/t@${r2}`, `put object/o1@${r2}`]);
    t.same(batches.map((b) => [b.revision, b.relist]), [[r1, false], [r2, false]]);
    stop();
    await store.transact((tx) => tx.put('tenant', 'u', tenant('u')));
    await new Promise((r) => setTimeout(r, 100));
    t.equal(batches.length, 2, 'nothing after unsubscribing');
  });

  await t.test(`${engine.name}: concurrent read-modify-writes lose no update`, async (t) => {
    const store = await engine.open(t);
    await store.transact((tx) => tx.put('tenant', 'counter', tenant('counter', '0')));
    const bump = () => store.transact((tx) => {
      const n = Number(tx.get('tenant', 'counter')?.value.name ?? 0);
      tx.put('tenant', 'counter', tenant('counter', String(n + 1)));
    });
    await Promise.all(Array.from({ length: 25 }, bump));
    t.equal(store.get('tenant', 'counter')?.value.name, '25', '25 increments, 25 counted');
  });
}

void t.test('SQLite', async (t) => {
  await contract(t, {
    name: 'sqlite',
    async open(t) {
      const dir = await mkdtemp(join(tmpdir(), 'hostnet-contract-'));
      const store = openSqliteStore(join(dir, 'hostnet.db'));
      t.teardown(async () => { await store.close(); await rm(dir, { recursive: true, force: true }); });
      return store;
    },
  });
});

void t.test('etcd', async (t) => {
  const cluster = await EtcdCluster.start(await mkdtemp(join(tmpdir(), 'hostnet-etcd-')), `hnc${process.pid}`);
  t.teardown(() => cluster.stop());
  let n = 0;
  await contract(t, {
    name: 'etcd',
    async open(t) {
      // Every store its own prefix: an empty store in the same cluster.
      const client = new EtcdClient({ endpoints: cluster.endpoints });
      const store = await openEtcdStore({ client, replicaId: 'r1', log, prefix: `/contract/${++n}/` });
      t.teardown(async () => { await store.close(); client.close(); });
      return store;
    },
  });

  await t.test('etcd: a replica whose event loop is held up for 5 s still follows the store (its timer runs before it reads the answers waiting)', async (t) => {
    const lines: string[] = [];
    const recording = createLogger({ name: 'contract', level: 'info', destination: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }) });
    const client = new EtcdClient({ endpoints: cluster.endpoints });
    const store = await openEtcdStore({ client, replicaId: 'r1', log: recording, prefix: `/contract/${++n}/`, progressMs: 500 });
    t.teardown(async () => { await store.close(); client.close(); });
    await store.transact((tx) => { tx.put('tenant', 't', tenant('t')); });
    t.ok(store.live(), 'following the store');
    // Busy for ten progress intervals: as under thousands of TLS handshakes at once.
    const until = Date.now() + 5000;
    while (Date.now() < until) { /* the event loop is held */ }
    await new Promise((r) => setTimeout(r, 1500));
    t.same(lines.filter((l) => /went silent|not following/.test(l)).map((l) => (JSON.parse(l) as { msg: string }).msg), [], 'it never took the watch for silent');
    t.ok(store.live(), 'and follows the store');
    const r = await store.transact((tx) => { tx.put('tenant', 'u', tenant('u')); });
    t.ok(r.revision > 0, 'it still writes');
  });

  await t.test('etcd: a transaction past etcd\'s limits is refused whole, naming them; many reads fold into one compare per kind', async (t) => {
    const client = new EtcdClient({ endpoints: cluster.endpoints });
    const store = await openEtcdStore({ client, replicaId: 'r1', log, prefix: `/contract/${++n}/` });
    t.teardown(async () => { await store.close(); client.close(); });
    const err = await store.transact((tx) => {
      for (let i = 0; i < 200; i++) tx.put('object', `o${i}`, object(`o${i}`, [`10.${i}.0.0/16`]));
    }).then(() => undefined, (e: unknown) => e as HostnetError);
    t.equal(err?.code, Status.FAILED_PRECONDITION);
    t.match(err?.message, /writes 200 resources .* at most 126 resources and 1536 KiB per transaction \(etcd's --max-txn-ops and --max-request-bytes\): apply it in smaller parts/);
    t.equal(store.list('object').length, 0, 'nothing was written');
    for (let i = 0; i < 3; i++) {
      await store.transact((tx) => { for (let j = 0; j < 100; j++) tx.put('object', `o${i * 100 + j}`, object(`o${i * 100 + j}`, [`10.${j}.${i}.0/24`])); });
    }
    const r = await store.transact((tx) => {
      const seen = Array.from({ length: 300 }, (_, i) => tx.get('object', `o${i}`)).filter(Boolean).length;
      tx.put('tenant', 't', tenant('t', String(seen)));
      return seen;
    });
    t.equal(r.result, 300, 'a transaction that read 300 keys commits (etcd takes 128 compares)');
  });
});
