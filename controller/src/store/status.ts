// Rollout, health and connections: what the controller knows of each host's
// updates, reports and stream. Not intent: no revision, written in batches on
// change, the last second's worth lost at worst. A store of its own beside
// the resources: SQLite keeps the rollout in the same database (one
// controller: health and connections live in its memory); etcd shares all
// three between the replicas (etcd/status.ts), connections bound to the
// writing replica's session lease.
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type HealthReport, HealthReportSchema } from '../../../proto/gen/hostnet/v1/health_pb.js';

export type StatusKind = 'rollout' | 'health' | 'connection';
export const STATUS_KINDS: readonly StatusKind[] = ['rollout', 'health', 'connection'];

/** One host's record of one kind; `value` undefined: deleted. */
export interface StatusRecord {
  readonly kind: StatusKind;
  readonly hostId: string;
  readonly value: Uint8Array | undefined;
}

export interface StatusStore {
  /**
   * Every record kept; from then on `on` gets every record any replica
   * writes or deletes (this one's included) as it happens, and after a gap
   * (a relist) every record again with deletions for those gone.
   */
  load(on: (records: readonly StatusRecord[]) => void): Promise<StatusRecord[]>;
  /** Writes (or, value undefined, deletes) records in one batch. Throws when the store cannot take them. */
  save(records: readonly StatusRecord[]): Promise<void>;
}

/** What the controller last knew of a host's rollout. */
export interface RolloutRow {
  readonly sentVersion: string;
  readonly appliedVersion: string;
  readonly nackedVersion: string;
  /** The agent's error for the refused version, encoded ErrorDetail. */
  readonly nackError: Uint8Array | undefined;
  readonly updatedAt: Date;
}

/** A host's latest health report as the replica it reports to received it. */
export interface HealthRow {
  readonly report: HealthReport;
  readonly received: Date;
  /** The replica the host reports to found it silent for three heartbeats. */
  readonly stale: boolean;
}

/** Which replica a host's Sync stream is open on, since when. */
export interface ConnectionRow {
  readonly replica: string;
  readonly since: Date;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const json = (v: unknown): Uint8Array => encoder.encode(JSON.stringify(v));
const parse = (b: Uint8Array): Record<string, unknown> => JSON.parse(decoder.decode(b)) as Record<string, unknown>;
const str = (v: unknown): string => (typeof v === 'string' ? v : '');
const date = (v: unknown): Date => new Date(typeof v === 'number' ? v : 0);
const b64 = (v: unknown): Uint8Array | undefined => (typeof v === 'string' && v ? Buffer.from(v, 'base64') : undefined);

export const encodeRollout = (r: RolloutRow): Uint8Array => json({
  sent: r.sentVersion, applied: r.appliedVersion, nacked: r.nackedVersion,
  nackError: r.nackError ? Buffer.from(r.nackError).toString('base64') : '', updatedAt: r.updatedAt.getTime(),
});

export function decodeRollout(b: Uint8Array): RolloutRow {
  const o = parse(b);
  return { sentVersion: str(o.sent), appliedVersion: str(o.applied), nackedVersion: str(o.nacked), nackError: b64(o.nackError), updatedAt: date(o.updatedAt) };
}

export const encodeHealth = (h: HealthRow): Uint8Array => json({
  report: Buffer.from(toBinary(HealthReportSchema, h.report)).toString('base64'), received: h.received.getTime(), stale: h.stale,
});

export function decodeHealth(b: Uint8Array): HealthRow {
  const o = parse(b);
  return { report: fromBinary(HealthReportSchema, b64(o.report) ?? new Uint8Array()), received: date(o.received), stale: o.stale === true };
}

export const encodeConnection = (c: ConnectionRow): Uint8Array => json({ replica: c.replica, since: c.since.getTime() });

export function decodeConnection(b: Uint8Array): ConnectionRow {
  const o = parse(b);
  return { replica: str(o.replica), since: date(o.since) };
}
