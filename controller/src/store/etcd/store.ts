// The etcd store engine, for several controller replicas. Layout under
// <prefix>intent/ (prefix default /hostnet/v1/):
//   r/<kind>/<key>   a resource, its protobuf bytes (revision 0 inside: the
//                    key's mod revision is its revision)
//   gen/<kind>       bumped by every transaction that writes the kind: a
//                    transaction that listed a kind compares it, so a write
//                    anywhere in the kind (a new host taking an address, a
//                    deleted one) invalidates the listing
//   txn/<replica>    the id of this replica's last transaction: compared by
//                    every transaction of the replica, and read back when a
//                    commit's outcome is unknown (etcd went away mid-call)
// The store revision is etcd's. Reads come from the snapshot the feed keeps;
// a transaction compares the mod revision of every key it read (0: absent)
// and of every kind it listed, commits only if none moved, and otherwise runs
// again once the snapshot has caught up. Transactions of one replica run one
// at a time.
import { randomUUID } from 'node:crypto';
import { fromBinary, toBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../../../common/log.js';
import { HostnetError } from '../../../../proto/grpc/errors.js';
import { Compare_CompareResult, Compare_CompareTarget, type CompareSchema, type RequestOpSchema } from '../../../../proto/gen/etcdserverpb/rpc_pb.js';
import { Event_EventType, type Event, type KeyValue } from '../../../../proto/gen/mvccpb/kv_pb.js';
import { type Change, type ChangeBatch, type Kind, KINDS, KIND_NAMES, type ResourceOf, type Store, type Stored, type Tx } from '../store.js';
import { Overlay, Snapshot } from '../snapshot.js';
import { type EtcdClient, bytes, etcdUnavailable, isRetryable, text } from './client.js';
import { PrefixFeed, under } from './feed.js';

export interface EtcdStoreOptions {
  readonly client: EtcdClient;
  /** This replica's name (unique among the replicas). */
  readonly replicaId: string;
  readonly log: Logger;
  readonly prefix?: string;
  /** How often the watch is asked for progress (its liveness). */
  readonly progressMs?: number;
  /** How long a transaction may take, conflicts and retries included (default 10 s). */
  readonly transactMs?: number;
  /** etcd's --max-txn-ops (default 128): the most compares, and the most writes, one transaction may carry. */
  readonly maxTxnOps?: number;
  /** etcd's --max-request-bytes (default 1.5 MiB): the largest transaction. */
  readonly maxRequestBytes?: number;
}

export interface EtcdStore extends Store {
  /** Relists after the feed fell behind a compaction. */
  readonly relists: number;
  /** Transactions that ran again after a conflict with another replica's commit. */
  readonly conflicts: number;
}

const isKind = (k: string): k is Kind => (KIND_NAMES as string[]).includes(k);

/** Opens the store: lists everything (throws UNAVAILABLE when etcd cannot be reached), then follows it. */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<EtcdStore> {
  const { client, log } = options;
  // Intent under its own prefix: the status keys beside it (etcd/status.ts) are not in this feed.
  const prefix = `${options.prefix ?? '/hostnet/v1/'}intent/`;
  const transactMs = options.transactMs ?? 10_000;
  const maxOps = options.maxTxnOps ?? 128;
  const maxBytes = options.maxRequestBytes ?? 1.5 * 1024 * 1024;
  const keyOf = (kind: Kind, key: string): string => `${prefix}r/${kind}/${key}`;
  const genKey = (kind: Kind): string => `${prefix}gen/${kind}`;
  const txnKey = `${prefix}txn/${options.replicaId}`;

  const snapshot = new Snapshot();
  /** Mod revisions of the gen/<kind> keys, and of this replica's txn key, as the snapshot knows them. */
  const gens = new Map<Kind, number>();
  let txnRev = 0;
  const watchers = new Set<(b: ChangeBatch) => void>();
  const waiters: { revision: number; resolve: () => void }[] = [];
  let live = false;
  let relists = 0;
  let conflicts = 0;

  const decode = (kv: KeyValue, path: string): Stored<Kind> | undefined => {
    const slash = path.indexOf('/');
    const kind = path.slice(0, slash);
    if (!isKind(kind)) return undefined;
    const key = path.slice(slash + 1);
    try {
      const value = fromBinary(KINDS[kind], kv.value) as ResourceOf<Kind>;
      value.revision = kv.modRevision;
      return { kind, key, value, revision: Number(kv.modRevision) };
    } catch (err) {
      log.error({ err, key: text(kv.key) }, 'etcd: a resource that does not decode is ignored');
      return undefined;
    }
  };

  /** Bookkeeping keys (gen, txn) of a listing or an event. */
  const track = (kv: KeyValue, deleted: boolean): void => {
    const path = under(prefix, kv.key);
    if (path === undefined) return;
    if (path.startsWith('gen/')) {
      const kind = path.slice(4);
      if (isKind(kind)) gens.set(kind, deleted ? 0 : Number(kv.modRevision));
    } else if (`${prefix}${path}` === txnKey) {
      txnRev = deleted ? 0 : Number(kv.modRevision);
    }
  };

  const settle = (): void => {
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i] as (typeof waiters)[number];
      if (w.revision <= snapshot.revision) {
        waiters.splice(i, 1);
        w.resolve();
      }
    }
  };

  const emit = (batch: ChangeBatch): void => {
    for (const w of watchers) {
      try {
        w(batch);
      } catch (err) {
        log.error({ err }, 'a store watcher threw');
      }
    }
  };

  const feed = new PrefixFeed(client, prefix, {
    reset(kvs, revision, why) {
      const items: Stored<Kind>[] = [];
      gens.clear();
      txnRev = 0;
      for (const kv of kvs) {
        track(kv, false);
        const path = under(prefix, kv.key);
        if (path?.startsWith('r/')) {
          const s = decode(kv, path.slice(2));
          if (s) items.push(s);
        }
      }
      snapshot.reset(items, revision);
      if (why === 'compacted') {
        relists++;
        emit({ revision, changes: [], relist: true });
      }
      settle();
    },
    events(revision, events: readonly Event[]) {
      const puts: Stored<Kind>[] = [];
      const deletes: { kind: Kind; key: string }[] = [];
      const changes: Change[] = [];
      for (const e of events) {
        if (!e.kv) continue;
        const deleted = e.type === Event_EventType.DELETE;
        track(e.kv, deleted);
        const path = under(prefix, e.kv.key);
        if (!path?.startsWith('r/')) continue;
        const rest = path.slice(2);
        const slash = rest.indexOf('/');
        const kind = rest.slice(0, slash);
        if (!isKind(kind)) continue;
        const key = rest.slice(slash + 1);
        if (deleted) {
          deletes.push({ kind, key });
        } else {
          const s = decode(e.kv, rest);
          if (!s) continue;
          puts.push(s);
        }
        changes.push({ revision, kind, key, op: deleted ? 'delete' : 'put' });
      }
      snapshot.apply(revision, puts, deletes);
      if (changes.length > 0) emit({ revision, changes, relist: false });
      settle();
    },
    progress(revision) {
      snapshot.apply(revision, [], []);
      settle();
    },
    live(now, why) {
      if (now !== live) log.info({ live: now, why }, now ? 'etcd: following the store' : 'etcd: not following the store');
      live = now;
    },
  }, log, options.progressMs);
  await feed.start().catch((err: unknown) => { throw etcdUnavailable('opening the store', err); });

  // A member that lost its quorum may keep a watch open: a linearizable read every 2 s proves there is one.
  // Two failed in a row, not one: a replica whose event loop is held up (10,000 agents' TLS handshakes
  // after a restart) can see the read's deadline pass with the answer waiting unread in its socket.
  let heartbeatFailures = 0;
  const heartbeat = setInterval(() => {
    client.range(bytes(txnKey), undefined, { countOnly: true, budgetMs: 3000 }).then(() => {
      if (heartbeatFailures >= 2) log.info({ live }, 'etcd: a linearizable read answers again');
      heartbeatFailures = 0;
    }, (err: unknown) => {
      if (++heartbeatFailures === 2) log.warn({ err }, 'etcd: two linearizable reads in a row failed (no quorum?): not following the store');
    });
  }, 2000);
  heartbeat.unref();

  const isLive = (): boolean => live && heartbeatFailures < 2;

  /** Resolves once the snapshot has `revision` (asking the watch for progress), or rejects after `ms`. */
  const caughtUp = (revision: number, ms: number): Promise<void> => {
    if (snapshot.revision >= revision) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const w = { revision, resolve: () => { clearTimeout(timer); clearInterval(ask); resolve(); } };
      const timer = setTimeout(() => {
        clearInterval(ask);
        const i = waiters.indexOf(w);
        if (i >= 0) waiters.splice(i, 1);
        reject(etcdUnavailable(`waiting for revision ${revision} (have ${snapshot.revision})`, new Error('the watch did not catch up')));
      }, ms);
      const ask = setInterval(() => feed.requestProgress(), 50);
      waiters.push(w);
      feed.requestProgress();
    });
  };

  const waitLive = async (ms: number): Promise<void> => {
    const until = Date.now() + ms;
    while (!isLive() && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (!isLive()) throw etcdUnavailable('the change was not made', new Error('this replica is not following the store'));
  };

  /** Whether this replica's last transaction is `id`, read linearizably (throws when etcd cannot say). */
  const committed = async (id: string): Promise<number | undefined> => {
    const r = await client.range(bytes(txnKey), undefined, { budgetMs: transactMs });
    const kv = r.kvs[0];
    return kv && text(kv.value) === id ? Number(kv.modRevision) : undefined;
  };

  let queue: Promise<unknown> = Promise.resolve();

  async function attemptAll<T>(fn: (tx: Tx) => T): Promise<{ result: T; revision: number }> {
    const until = Date.now() + transactMs;
    for (let attempt = 1; ; attempt++) {
      // A replica cut off from etcd refuses at once (after a short grace for a leader election).
      await waitLive(Math.min(2000, Math.max(0, until - Date.now())));
      const overlay = new Overlay(snapshot);
      const result = fn(overlay);
      if (overlay.writes.size === 0) return { result, revision: snapshot.revision };
      const compare: MessageInitShape<typeof CompareSchema>[] = [];
      const mod = (key: string, revision: number): MessageInitShape<typeof CompareSchema> => ({
        result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.MOD, key: bytes(key), targetUnion: { case: 'modRevision', value: BigInt(revision) },
      });
      // One compare per key read; past etcd's limit, one per kind read instead (its gen key moves with any
      // write to the kind: coarser, never wrong).
      const reads = [...overlay.reads.values()];
      const whole = new Set(overlay.listed);
      if (reads.length + whole.size + 1 > maxOps) for (const r of reads) whole.add(r.kind);
      for (const r of reads) if (!whole.has(r.kind)) compare.push(mod(keyOf(r.kind, r.key), r.revision));
      for (const kind of whole) compare.push(mod(genKey(kind), gens.get(kind) ?? 0));
      compare.push(mod(txnKey, txnRev));
      const id = randomUUID();
      const success: MessageInitShape<typeof RequestOpSchema>[] = [];
      const written = new Set<Kind>();
      for (const w of overlay.writes.values()) {
        written.add(w.kind);
        if (w.value === undefined) {
          success.push({ request: { case: 'requestDeleteRange', value: { key: bytes(keyOf(w.kind, w.key)) } } });
        } else {
          // The revision is the key's, never part of the stored bytes.
          const value = toBinary(KINDS[w.kind], { ...w.value, revision: 0n });
          success.push({ request: { case: 'requestPut', value: { key: bytes(keyOf(w.kind, w.key)), value } } });
        }
      }
      for (const kind of written) success.push({ request: { case: 'requestPut', value: { key: bytes(genKey(kind)), value: bytes(id) } } });
      success.push({ request: { case: 'requestPut', value: { key: bytes(txnKey), value: bytes(id) } } });
      const size = success.reduce((n, op) => n + (op.request?.case === 'requestPut' ? (op.request.value.value?.length ?? 0) + 64 : 64), 0);
      if (success.length > maxOps || size > maxBytes) {
        throw new HostnetError(Status.FAILED_PRECONDITION, {
          reason: 'TRANSACTION_TOO_LARGE',
          message: `this change writes ${overlay.writes.size} resources (${Math.ceil(size / 1024)} KiB) in one transaction; the etcd store takes at most `
            + `${maxOps - written.size - 1} resources and ${Math.floor(maxBytes / 1024)} KiB per transaction (etcd's --max-txn-ops and --max-request-bytes): `
            + 'apply it in smaller parts',
        });
      }

      let revision: number | undefined;
      let behind = 0;
      try {
        const r = await client.txn({ compare, success });
        if (r.succeeded) revision = Number(r.header?.revision ?? 0n);
        else behind = Number(r.header?.revision ?? 0n);
      } catch (err) {
        if (!isRetryable(err)) throw err;
        // The outcome is unknown: etcd may have committed it. Its txn key says.
        let found: number | undefined;
        try {
          found = await committed(id);
        } catch (readErr) {
          throw etcdUnavailable('the change may or may not have been made (read it back)', readErr);
        }
        if (found !== undefined) revision = found;
        else log.warn({ err: { message: (err as Error).message }, attempt }, 'etcd: a transaction failed before committing; trying again');
      }
      if (revision !== undefined) {
        await caughtUp(revision, Math.max(1000, until - Date.now()));
        return { result, revision };
      }
      if (behind > 0) conflicts++;
      if (Date.now() >= until) {
        throw new HostnetError(Status.UNAVAILABLE, {
          reason: 'STORE_BUSY', message: `the change was not made: ${attempt} attempts conflicted with other replicas' changes or failed; try again`,
        });
      }
      // Another replica's commit moved what this one read: run again once the snapshot has it.
      if (behind > 0) await caughtUp(behind, Math.max(1000, until - Date.now()));
      else await new Promise((r) => setTimeout(r, Math.min(1000, 50 * attempt)));
    }
  }

  return {
    get: (kind, key) => snapshot.get(kind, key),
    list: (kind) => snapshot.list(kind),
    hostOfAddress: (a) => snapshot.hostOfAddress(a),
    lowestFreeAddress: (pool, skip) => snapshot.lowestFreeAddress(pool, skip),
    revision: () => snapshot.revision,
    live: isLive,
    get relists() { return relists; },
    get conflicts() { return conflicts; },
    transact<T>(fn: (tx: Tx) => T): Promise<{ result: T; revision: number }> {
      const next = queue.then(() => attemptAll(fn));
      queue = next.catch(() => undefined);
      return next;
    },
    watch(fromRevision, on) {
      // etcd's history is not replayed here: a watcher that starts behind the snapshot starts over from it.
      if (fromRevision < snapshot.revision) on({ revision: snapshot.revision, changes: [], relist: true });
      watchers.add(on);
      return () => { watchers.delete(on); };
    },
    async close() {
      clearInterval(heartbeat);
      watchers.clear();
      await feed.stop();
    },
  };
}
