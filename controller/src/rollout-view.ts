// The JSON form of a host's rollout, one shape for every reader: the HTTP API
// (/api/v1/rollout), `hostnetctl rollout -o json`, and the dashboard. Built
// from GetRollout's message, so the names are the contract's.
import { timestampDate } from '@bufbuild/protobuf/wkt';
import type { HostRollout } from '../../proto/gen/hostnet/v1/admin_pb.js';

export interface RolloutView {
  hostId: string;
  desiredVersion: string;
  sentVersion: string;
  appliedVersion: string;
  /** The latest refused version, or null. */
  nackedVersion: string | null;
  /** The agent's error for it, or null. */
  nackError: { reason: string; field: string; message: string } | null;
  connected: boolean;
  /** ISO 8601. */
  updatedAt: string | null;
}

export function rolloutView(r: HostRollout): RolloutView {
  return {
    hostId: r.hostId,
    desiredVersion: r.desiredVersion,
    sentVersion: r.sentVersion,
    appliedVersion: r.appliedVersion,
    nackedVersion: r.nackedVersion || null,
    nackError: r.nackedVersion && r.nackError ? { reason: r.nackError.reason, field: r.nackError.field, message: r.nackError.message } : null,
    connected: r.connected,
    updatedAt: r.updatedAt ? timestampDate(r.updatedAt).toISOString() : null,
  };
}
