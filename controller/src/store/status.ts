// Rollout and health: what the controller knows of each host's updates and
// reports. Not intent: no revision, written in batches, lost at worst for the
// last second. A store of its own, beside the resources: the SQLite engine
// keeps it in the same database (one controller); with etcd it is shared by
// every replica (etcd/status.ts).

/** What the controller last knew of a host's rollout. */
export interface RolloutRow {
  readonly hostId: string;
  readonly sentVersion: string;
  readonly appliedVersion: string;
  readonly nackedVersion: string;
  /** The agent's error for the refused version, encoded ErrorDetail. */
  readonly nackError: Uint8Array | undefined;
  readonly updatedAt: Date;
}

export interface StatusStore {
  /** Writes rollout rows and removes those of `deleted` hosts, in one batch. */
  saveRollout(rows: readonly RolloutRow[], deleted?: readonly string[]): Promise<void>;
  loadRollout(): Promise<RolloutRow[]>;
}
