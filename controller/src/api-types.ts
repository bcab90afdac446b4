// The JSON shapes of the controller's HTTP API (docs/controller-api.md), in
// one file with no imports: the controller builds them, and the dashboard
// page (controller/web, compiled for the browser) reads them with the same
// types. Fields are only ever added.

export type HostStatus = 'ok' | 'degraded' | 'failed' | 'stale' | 'unknown';
export const HOST_STATUSES: readonly HostStatus[] = ['ok', 'degraded', 'failed', 'stale', 'unknown'];

/** Where a host stands with the intent the controller wants it to have. */
export type RolloutState = 'applied' | 'pending' | 'refused';
export const ROLLOUT_STATES: readonly RolloutState[] = ['applied', 'pending', 'refused'];

export interface HostView {
  id: string;
  subnet: string;
  tenant: string;
  status: HostStatus;
  /** When the last health report arrived (ISO 8601), or null. */
  lastSeen: string | null;
  connected: boolean;
  /** The controller replica its Sync stream is open on (null: none). */
  controller: string | null;
  desiredVersion: string;
  appliedVersion: string;
  /** applied: the desired version acknowledged; refused: the desired version NACKed; pending: neither yet. */
  rollout: RolloutState;
  nack: { version: string; reason: string; message: string } | null;
  /** The agent's checks; `since`: when the check last changed status (ISO 8601, null when the agent did not say). */
  checks: { name: string; status: HostStatus; reason: string; since: string | null }[];
  /** The agent's recent events (drift repaired, update refused, ...), oldest first, as last reported. */
  events: { kind: string; detail: string; time: string | null }[];
  /** The BGP session of each uplink as last reported, sorted by uplink. */
  sessions: { uplink: string; state: string; remoteAs: number; prefixesReceived: number; advertised: string[] }[];
  /** The agent's software version as last reported ('' before a report). */
  agentVersion: string;
  repairsTotal: number;
}

/** GET /api/v1/summary: the fleet at a glance, for the caller's hosts. */
export interface FleetSummary {
  /** The store revision the controller serves. */
  revision: number;
  /** When this summary was made (ISO 8601). */
  generatedAt: string;
  /** Who is asking: an operator sees the whole fleet, a tenant admin its tenant's hosts. */
  viewer: { role: 'operator' } | { role: 'tenant-admin'; tenant: string };
  hosts: number;
  status: Record<HostStatus, number>;
  /** Hosts with no Sync stream open to any replica. */
  disconnected: number;
  rollout: {
    applied: number;
    pending: number;
    refused: number;
    /** Refused hosts grouped by the agents' error reason, most hosts first. */
    reasons: { reason: string; hosts: number; message: string; sample: string[] }[];
  };
}

/** One entry of GET /api/v1/switches (operators only). */
export interface SwitchView {
  readonly name: string;
  readonly asn: number;
  readonly routerId: string;
  /** The version of the configuration compiled for it now. */
  readonly version: string;
  readonly routedPorts: number;
  readonly poolPorts: number;
  /** Its ToR agent streams to a replica (this one or another). */
  readonly connected: boolean;
  /** Which replica, when connected. */
  readonly replica: string | null;
  /** What that agent last acknowledged ('' when nothing yet). */
  readonly appliedVersion: string;
  readonly refused: { readonly version: string; readonly error: string } | null;
  /** From its ToR agent's reports: ok, degraded (a neighbor's session down), failed, stale, unknown (never reported). */
  readonly status: HostStatus;
  readonly lastSeen: string | null;
  /** The checks of the last report: switch-config, bgp:PORT per neighbor. */
  readonly checks: readonly { readonly name: string; readonly status: string; readonly reason: string }[];
  /** Each neighbor's BGP session (host ports and fabric ports), from the last report. */
  readonly sessions: readonly { readonly port: string; readonly state: string; readonly remoteAs: number; readonly prefixesReceived: number }[];
}
