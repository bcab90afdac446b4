// Rollout, health and connections in etcd, shared by the replicas:
// <prefix>status/<kind>/<host>, JSON values (status.ts). Each replica writes
// what its own agents tell it, in batches (at most OPS_PER_TXN operations per
// transaction, etcd's default limit being 128), and follows every replica's
// writes through a feed. Connection records are attached to the writing
// replica's session lease: when the replica dies they vanish with it, and
// when the lease was lost they are put again under the new one.
import type { MessageInitShape } from '@bufbuild/protobuf';
import type { Logger } from '../../../../common/log.js';
import { Compare_CompareResult, Compare_CompareTarget, type RequestOpSchema } from '../../../../proto/gen/etcdserverpb/rpc_pb.js';
import { Event_EventType } from '../../../../proto/gen/mvccpb/kv_pb.js';
import { STATUS_KINDS, type StatusKind, type StatusRecord, type StatusStore } from '../status.js';
import { type EtcdClient, bytes, etcdUnavailable } from './client.js';
import { PrefixFeed, under } from './feed.js';
import type { Session } from './session.js';

const OPS_PER_TXN = 100;

export interface EtcdStatus extends StatusStore {
  /** Starts listing now (the controller's start lists the intent meanwhile); `load` then takes what it found. */
  prefetch(): void;
  close(): Promise<void>;
}

export function etcdStatus(client: EtcdClient, session: Session, log: Logger, rootPrefix = '/hostnet/v1/'): EtcdStatus {
  const prefix = `${rootPrefix}status/`;
  const keyOf = (kind: StatusKind, hostId: string): string => `${prefix}${kind}/${hostId}`;
  /** The keys every replica wrote, as this one last saw them (for the deletions a relist reveals). */
  const known = new Set<string>();
  /** This replica's connection records, to put again under a new lease. */
  const mine = new Map<string, Uint8Array>();
  let feed: PrefixFeed | undefined;

  const parseKey = (path: string): { kind: StatusKind; hostId: string } | undefined => {
    const slash = path.indexOf('/');
    const kind = path.slice(0, slash) as StatusKind;
    return STATUS_KINDS.includes(kind) ? { kind, hostId: path.slice(slash + 1) } : undefined;
  };

  const commit = async (ops: MessageInitShape<typeof RequestOpSchema>[]): Promise<void> => {
    for (let i = 0; i < ops.length; i += OPS_PER_TXN) {
      await client.txn({ success: ops.slice(i, i + OPS_PER_TXN) }).catch((err: unknown) => {
        throw etcdUnavailable('saving rollout and health', err);
      });
    }
  };

  session.onNewLease((lease) => {
    const ops = [...mine].map(([key, value]) => ({ request: { case: 'requestPut' as const, value: { key: bytes(key), value, lease } } }));
    commit(ops).catch((err: unknown) => log.warn({ err }, 'etcd: cannot put the connections again under the new lease'));
  });

  /** Who gets the records after the first listing (set by load); until then they wait here, in order. */
  let deliverTo: ((records: StatusRecord[]) => void) | undefined;
  const waiting: StatusRecord[] = [];
  const deliver = (records: StatusRecord[]): void => {
    if (deliverTo) deliverTo(records);
    else waiting.push(...records);
  };
  let listed: Promise<StatusRecord[]> | undefined;
  const start = (): Promise<StatusRecord[]> => {
    listed ??= (async () => {
      let first: StatusRecord[] = [];
      feed = new PrefixFeed(client, prefix, {
        reset(kvs, _revision, why) {
          const records: StatusRecord[] = [];
          const seen = new Set<string>();
          for (const kv of kvs) {
            const path = under(prefix, kv.key);
            const id = path === undefined ? undefined : parseKey(path);
            if (!id) continue;
            const key = keyOf(id.kind, id.hostId);
            seen.add(key);
            known.add(key);
            records.push({ ...id, value: kv.value });
          }
          for (const key of [...known]) {
            if (seen.has(key)) continue;
            known.delete(key);
            const id = parseKey(key.slice(prefix.length));
            if (id) records.push({ ...id, value: undefined });
          }
          if (why === 'start') first = records;
          else deliver(records);
        },
        events(_revision, events) {
          const records: StatusRecord[] = [];
          for (const e of events) {
            const path = e.kv ? under(prefix, e.kv.key) : undefined;
            const id = path === undefined ? undefined : parseKey(path);
            if (!id || !e.kv) continue;
            const deleted = e.type === Event_EventType.DELETE;
            if (deleted) known.delete(keyOf(id.kind, id.hostId));
            else known.add(keyOf(id.kind, id.hostId));
            records.push({ ...id, value: deleted ? undefined : e.kv.value });
          }
          if (records.length > 0) deliver(records);
        },
        progress() {},
        live() {},
      }, log);
      await feed.start().catch((err: unknown) => { throw etcdUnavailable('loading rollout and health', err); });
      return first;
    })();
    return listed;
  };

  return {
    prefetch() {
      // A failure is load's to report.
      start().catch(() => undefined);
    },
    async load(on) {
      const first = await start();
      // What changed between the listing and now follows it, in order; from here on `on` gets it.
      deliverTo = on;
      return [...first, ...waiting.splice(0)];
    },
    async save(records) {
      const ops: MessageInitShape<typeof RequestOpSchema>[] = [];
      const released: Promise<unknown>[] = [];
      for (const r of records) {
        const key = keyOf(r.kind, r.hostId);
        if (r.kind === 'connection' && !r.value) {
          // Only this replica's own record goes: the agent may already be connected to another replica.
          const value = mine.get(key);
          mine.delete(key);
          if (value) {
            released.push(client.txn({
              compare: [{ key: bytes(key), result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.VALUE, targetUnion: { case: 'value', value } }],
              success: [{ request: { case: 'requestDeleteRange', value: { key: bytes(key) } } }],
            }).catch((err: unknown) => { throw etcdUnavailable('saving connections', err); }));
          }
          continue;
        }
        if (r.kind === 'connection' && r.value) mine.set(key, r.value);
        if (!r.value) {
          ops.push({ request: { case: 'requestDeleteRange', value: { key: bytes(key) } } });
        } else {
          const lease = r.kind === 'connection' ? session.lease ?? 0n : 0n;
          ops.push({ request: { case: 'requestPut', value: { key: bytes(key), value: r.value, lease } } });
        }
      }
      await Promise.all([commit(ops), ...released]);
    },
    async close() {
      await feed?.stop();
    },
  };
}
