// The controller's store: one interface, engines behind it (SQLite now; etcd
// for several replicas later). Resources are protobuf messages keyed by kind
// and key; every committed transaction bumps one store-wide revision and
// records what it changed, which is what a watch-based engine replays.
import type { DescMessage, MessageShape } from '@bufbuild/protobuf';
import { AclSchema, HostSchema, NetworkCatalogSchema, NetworkObjectSchema, SubnetSchema, TenantSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';

/** The resource kinds and their messages. */
export const KINDS = {
  tenant: TenantSchema,
  subnet: SubnetSchema,
  catalog: NetworkCatalogSchema,
  host: HostSchema,
  object: NetworkObjectSchema,
  acl: AclSchema,
} as const;

export type Kind = keyof typeof KINDS;
export type ResourceOf<K extends Kind> = MessageShape<(typeof KINDS)[K]>;

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

/** Reads, inside or outside a transaction. */
export interface Reader {
  get<K extends Kind>(kind: K, key: string): Stored<K> | undefined;
  /** Every resource of a kind, sorted by key. */
  list<K extends Kind>(kind: K): Stored<K>[];
}

/** Reads and writes inside one transaction; reads see the transaction's own writes. */
export interface Tx extends Reader {
  put<K extends Kind>(kind: K, key: string, value: ResourceOf<K>): void;
  delete(kind: Kind, key: string): boolean;
}

/** What the controller last knew of a host's rollout (persisted in batches, outside the revisioned resources). */
export interface RolloutRow {
  readonly hostId: string;
  readonly sentVersion: string;
  readonly appliedVersion: string;
  readonly nackedVersion: string;
  /** The agent's error for the refused version, encoded ErrorDetail. */
  readonly nackError: Uint8Array | undefined;
  readonly updatedAt: Date;
}

export interface Store extends Reader {
  /** The revision of the last committed transaction (0 for an empty store). */
  revision(): number;
  /**
   * Runs `fn` as one transaction: all of its writes commit together under one
   * new revision, or (when it throws) none do and the error is rethrown. A
   * transaction without writes does not bump the revision.
   */
  transact<T>(fn: (tx: Tx) => T): { result: T; revision: number };
  /** Changes committed after `revision`, oldest first. */
  changesSince(revision: number): Change[];
  /** Writes rollout rows and removes those of `deleted` hosts, in one transaction (no revision bump: rollout is not intent). */
  saveRollout(rows: readonly RolloutRow[], deleted?: readonly string[]): void;
  loadRollout(): RolloutRow[];
  close(): void;
}

export const schemaOf = <K extends Kind>(kind: K): DescMessage => KINDS[kind];

/**
 * A Reader that reads each resource at most once: for passes that read the
 * same subnet, catalog, ACL and objects for thousands of hosts. Only valid
 * while the store does not change (one recompile pass).
 */
export function memoReader(reader: Reader): Reader {
  const gets = new Map<string, unknown>();
  const lists = new Map<Kind, unknown>();
  return {
    get<K extends Kind>(kind: K, key: string): Stored<K> | undefined {
      const k = `${kind}/${key}`;
      if (!gets.has(k)) gets.set(k, reader.get(kind, key));
      return gets.get(k) as Stored<K> | undefined;
    },
    list<K extends Kind>(kind: K): Stored<K>[] {
      if (!lists.has(kind)) lists.set(kind, reader.list(kind));
      return lists.get(kind) as Stored<K>[];
    },
  };
}
