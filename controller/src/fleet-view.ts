// The dashboard's questions about the fleet, answered from the host views:
// the summary (hosts by status, disconnected, rollout of the intent with the
// refusals grouped by reason) and the host list filtered, sorted and paged on
// the server, so a page for 10,000 hosts moves one page of rows. Pure.
import {
  type FleetSummary, HOST_STATUSES, type HostStatus, type HostView, ROLLOUT_STATES, type RolloutState,
} from './api-types.js';
import { byName } from '../../common/names.js';

/** A query parameter the API cannot use: answered 400 naming the parameter. */
export class QueryError extends Error {
  constructor(readonly param: string, message: string) {
    super(`query parameter "${param}": ${message}`);
  }
}

/** What the list filters, sorts and counts by: a host view without its checks, events and sessions. */
export type HostFacts = Pick<HostView, 'id' | 'subnet' | 'tenant' | 'status' | 'lastSeen' | 'connected' | 'rollout' | 'nack'>;

export const SORT_KEYS = ['id', 'status', 'tenant', 'subnet', 'lastSeen', 'rollout'] as const;
export type SortKey = typeof SORT_KEYS[number];

export interface HostQuery {
  /** Any of these statuses (none: every status). */
  readonly status: ReadonlySet<HostStatus>;
  readonly tenant: string | undefined;
  readonly subnet: string | undefined;
  /** Text the host id, tenant or subnet contains (case-insensitive). */
  readonly text: string | undefined;
  readonly connected: boolean | undefined;
  readonly rollout: RolloutState | undefined;
  readonly sort: SortKey;
  readonly descending: boolean;
  readonly offset: number;
  /** At most this many rows (undefined: all). */
  readonly limit: number | undefined;
}

export const MAX_LIMIT = 1000;
const PARAMS = ['status', 'tenant', 'subnet', 'q', 'connected', 'rollout', 'sort', 'order', 'offset', 'limit'];

function oneOf<T extends string>(param: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new QueryError(param, `${JSON.stringify(value.slice(0, 40))} is not one of ${allowed.join(', ')}`);
  return value as T;
}

function integer(param: string, value: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(value) || Number(value) < min || Number(value) > max) throw new QueryError(param, `${JSON.stringify(value.slice(0, 40))} is not an integer from ${min} to ${max}`);
  return Number(value);
}

/** The host list's query from the request's parameters; throws QueryError for any it cannot use. */
export function parseHostQuery(params: URLSearchParams): HostQuery {
  for (const name of new Set(params.keys())) {
    if (!PARAMS.includes(name)) throw new QueryError(name.slice(0, 40), `unknown; the host list takes ${PARAMS.join(', ')}`);
    if (params.getAll(name).length > 1) throw new QueryError(name, 'given more than once');
  }
  const get = (name: string): string | undefined => {
    const v = params.get(name);
    return v === null || v === '' ? undefined : v;
  };
  const status = get('status');
  const connected = get('connected');
  const rollout = get('rollout');
  const text = get('q');
  if (text !== undefined && text.length > 253) throw new QueryError('q', 'longer than 253 characters');
  return {
    status: new Set(status === undefined ? [] : status.split(',').map((s) => oneOf('status', s, HOST_STATUSES))),
    tenant: get('tenant'),
    subnet: get('subnet'),
    text: text?.toLowerCase(),
    connected: connected === undefined ? undefined : oneOf('connected', connected, ['true', 'false']) === 'true',
    rollout: rollout === undefined ? undefined : oneOf('rollout', rollout, ROLLOUT_STATES),
    sort: oneOf('sort', get('sort') ?? 'id', SORT_KEYS),
    descending: oneOf('order', get('order') ?? 'asc', ['asc', 'desc']) === 'desc',
    offset: integer('offset', get('offset') ?? '0', 0, 1e9),
    limit: get('limit') === undefined ? undefined : integer('limit', get('limit') ?? '', 1, MAX_LIMIT),
  };
}

/** Worst first: what an operator sorting by status wants on top. */
const STATUS_RANK: Record<HostStatus, number> = { failed: 0, stale: 1, degraded: 2, unknown: 3, ok: 4 };
const ROLLOUT_RANK: Record<RolloutState, number> = { refused: 0, pending: 1, applied: 2 };

const compareBy: Record<SortKey, (a: HostFacts, b: HostFacts) => number> = {
  id: () => 0,
  status: (a, b) => STATUS_RANK[a.status] - STATUS_RANK[b.status],
  tenant: (a, b) => byName(a.tenant, b.tenant),
  subnet: (a, b) => byName(a.subnet, b.subnet),
  // Never seen sorts before any time: oldest news first.
  lastSeen: (a, b) => byName(a.lastSeen ?? '', b.lastSeen ?? ''),
  rollout: (a, b) => ROLLOUT_RANK[a.rollout] - ROLLOUT_RANK[b.rollout],
};

const byId = (a: HostFacts, b: HostFacts): number => byName(a.id, b.id);

export function matches(h: HostFacts, q: HostQuery): boolean {
  return (q.status.size === 0 || q.status.has(h.status))
    && (q.tenant === undefined || h.tenant === q.tenant)
    && (q.subnet === undefined || h.subnet === q.subnet)
    && (q.connected === undefined || h.connected === q.connected)
    && (q.rollout === undefined || h.rollout === q.rollout)
    && (q.text === undefined || [h.id, h.tenant, h.subnet].some((s) => s.toLowerCase().includes(q.text ?? '')));
}

/** The hosts the query selects, sorted (ties by id, always ascending), and the page of them it asks for. */
export function selectHosts<T extends HostFacts>(views: readonly T[], q: HostQuery): { total: number; items: T[] } {
  const sign = q.descending ? -1 : 1;
  const key = compareBy[q.sort];
  const selected = views.filter((h) => matches(h, q)).sort((a, b) => sign * key(a, b) || (q.sort === 'id' ? sign : 1) * byId(a, b));
  return { total: selected.length, items: selected.slice(q.offset, q.limit === undefined ? undefined : q.offset + q.limit) };
}

/** Where a host stands with its desired version (a host view's `rollout`). */
export function rolloutStateOf(desired: string, applied: string, nacked: string | undefined): RolloutState {
  if (desired !== '' && applied === desired) return 'applied';
  if (desired !== '' && nacked === desired) return 'refused';
  return 'pending';
}

const SAMPLE = 5;

/** The fleet at a glance for these hosts. */
export function fleetSummary(views: readonly HostFacts[], viewer: FleetSummary['viewer'], revision: number, now: Date): FleetSummary {
  const status: Record<HostStatus, number> = { ok: 0, degraded: 0, failed: 0, stale: 0, unknown: 0 };
  const rollout: Record<RolloutState, number> = { applied: 0, pending: 0, refused: 0 };
  const reasons = new Map<string, { reason: string; hosts: number; message: string; sample: string[] }>();
  let disconnected = 0;
  for (const h of views) {
    status[h.status]++;
    rollout[h.rollout]++;
    if (!h.connected) disconnected++;
    if (h.rollout === 'refused') {
      const reason = h.nack?.reason || 'unknown';
      const r = reasons.get(reason) ?? { reason, hosts: 0, message: h.nack?.message ?? '', sample: [] };
      r.hosts++;
      if (r.sample.length < SAMPLE) r.sample.push(h.id);
      reasons.set(reason, r);
    }
  }
  return {
    revision,
    generatedAt: now.toISOString(),
    viewer,
    hosts: views.length,
    status,
    disconnected,
    rollout: { ...rollout, reasons: [...reasons.values()].sort((a, b) => b.hosts - a.hosts || a.reason.localeCompare(b.reason)) },
  };
}
