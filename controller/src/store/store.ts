// The controller's store: one interface, two engines (SQLite for one
// controller, etcd for several replicas). Resources are protobuf messages
// keyed by kind and key. Reads come from an in-memory snapshot at a revision
// (synchronous: validation, compilation and IPAM stay pure); a transaction
// runs on an overlay of the snapshot and commits only if nothing it read has
// changed (retried on conflict); `watch` is the one change feed, and it
// carries every committed write, whichever replica made it. Rollout and
// health live in a store of their own (status.ts).
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { AclSchema, HostSchema, NetworkCatalogSchema, NetworkObjectSchema, SubnetSchema, SwitchSchema, TenantSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { EnrollmentSchema, HostCredentialSchema } from '../../../proto/gen/hostnet/v1/identity_pb.js';

/** The resource kinds and their messages. */
export const KINDS = {
  tenant: TenantSchema,
  subnet: SubnetSchema,
  catalog: NetworkCatalogSchema,
  host: HostSchema,
  object: NetworkObjectSchema,
  acl: AclSchema,
  switch: SwitchSchema,
  /** Pending enrollment tokens (hashed), by host id. */
  enrollment: EnrollmentSchema,
  /** The certificates accepted for a host's agent, by host id. */
  credential: HostCredentialSchema,
  /**
   * Hosts deleted (released to the pool) whose switches have not all applied
   * the release yet, as they were: their addresses stay held until then.
   */
  released: HostSchema,
} as const;

export type Kind = keyof typeof KINDS;
/** The kinds of the intent (what the admin API creates, reads and deletes); the others hold agents' identities and releases in progress. */
export type ResourceKind = Exclude<Kind, 'enrollment' | 'credential' | 'released'>;
export type ResourceOf<K extends Kind> = MessageShape<(typeof KINDS)[K]>;
export const KIND_NAMES = Object.keys(KINDS) as Kind[];

/** A resource as stored: its key and the revision that last wrote it (also in `value.revision`). */
export interface Stored<K extends Kind> {
  readonly kind: K;
  readonly key: string;
  readonly value: ResourceOf<K>;
  readonly revision: number;
}

/** One change of a committed transaction. */
export interface Change {
  readonly revision: number;
  readonly kind: Kind;
  readonly key: string;
  readonly op: 'put' | 'delete';
}

/** What the change feed delivers: one committed revision's changes, or (`relist`) "start over from the snapshot". */
export interface ChangeBatch {
  readonly revision: number;
  readonly changes: readonly Change[];
  /** The feed could not deliver what happened in between (a compaction, a reconnect): treat everything as changed. */
  readonly relist: boolean;
}

/** Reads, inside or outside a transaction. */
export interface Reader {
  get<K extends Kind>(kind: K, key: string): Stored<K> | undefined;
  /** Every resource of a kind, sorted by key. */
  list<K extends Kind>(kind: K): Stored<K>[];
  /** The host holding an address (a /32 or /128), if any. Inside a transaction it depends on every host (a listing). */
  hostOfAddress(address: string): string | undefined;
  /** The lowest address of `pool` no host holds and not in `skip`; undefined when the pool is full. Likewise. */
  lowestFreeAddress(pool: string, skip?: ReadonlySet<string>): string | undefined;
}

/** Reads and writes inside one transaction; reads see the transaction's own writes. */
export interface Tx extends Reader {
  put<K extends Kind>(kind: K, key: string, value: ResourceOf<K>): void;
  delete(kind: Kind, key: string): boolean;
}

export interface Store extends Reader {
  /** The revision of the snapshot reads come from (0 for an empty store). */
  revision(): number;
  /**
   * Whether the snapshot is current: always for SQLite; for etcd, while this
   * replica follows the store with a leader (otherwise its reads may be stale
   * and writes fail: admin calls answer UNAVAILABLE, new agents go elsewhere).
   */
  live(): boolean;
  /**
   * Runs `fn` (synchronous, on an overlay of the snapshot) as one
   * transaction: all of its writes commit together under one new revision,
   * or (when it throws) none do and the error is rethrown. When a commit made
   * meanwhile (by any replica) changed what `fn` read, `fn` runs again on the
   * newer snapshot. A transaction without writes commits nothing. Resolves
   * once the snapshot has the new revision. Throws HostnetError UNAVAILABLE
   * when the store cannot take writes (etcd out of reach).
   */
  transact<T>(fn: (tx: Tx) => T): Promise<{ result: T; revision: number }>;
  /**
   * Calls `on` with every batch committed after `fromRevision`, in order
   * (replaying what the engine still has, or a relist batch when it has
   * not). Returns a function that stops it.
   */
  watch(fromRevision: number, on: (batch: ChangeBatch) => void): () => void;
  close(): Promise<void>;
}

export const schemaOf = <K extends Kind>(kind: K): DescMessage => KINDS[kind];
