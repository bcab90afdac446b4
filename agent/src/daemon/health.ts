// The agent's health: what the checks observed, turned into one status per
// check with a reason, an overall status (the worst check), and the
// HealthReport the controller stores. evaluate() is pure; HealthTracker
// remembers since when each check has had its status and the recent events,
// and says when the picture changed (a report goes out at once) — otherwise
// reports go out as heartbeats.
import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import {
  type HealthReport, HealthReportSchema, HealthStatus,
} from '../../../proto/gen/hostnet/v1/health_pb.js';
import type { BgpSession } from '../routing/bgp-state.js';
import type { ValidIntent } from '../routing/intent.js';
import type { RoutingDiagnosis } from '../routing/routing.js';

export type Level = 'ok' | 'degraded' | 'failed';

export interface Check {
  readonly name: string;
  readonly status: Level;
  readonly reason: string;
}

/** One uplink's BGP session as reported to the controller (the dashboard's "sessions per uplink"). */
export interface SessionStatus {
  readonly uplink: string;
  readonly state: string;
  readonly remoteAs: number;
  readonly prefixesReceived: number;
  readonly advertised: readonly string[];
}

/**
 * The session of every uplink the intent names, sorted by uplink: FRR's
 * state, or "not configured" for an uplink FRR has no session on. Empty
 * before an intent and while FRR does not answer (the checks say why).
 */
export function sessionStatuses(o: Pick<Observations, 'routing' | 'sessions' | 'advertised'>): SessionStatus[] {
  const intent = o.routing.intent;
  const sessions = o.sessions;
  if (!intent || sessions instanceof Error) return [];
  const uplinks = [...new Set(intent.networks.flatMap((n) => n.uplinks))].sort();
  return uplinks.map((uplink) => {
    const s = sessions.find((x) => x.peer === uplink);
    return {
      uplink,
      state: s?.state ?? 'not configured',
      remoteAs: s?.remoteAs ?? 0,
      prefixesReceived: s?.prefixesReceived ?? 0,
      advertised: [...(o.advertised.get(uplink) ?? [])].sort(),
    };
  });
}

export interface Observations {
  readonly firewall: {
    /** The applied policy version; undefined when none is in force. */
    readonly version: string | undefined;
    readonly repairFailing: boolean;
    readonly repairs: number;
    readonly warnings: readonly string[];
  };
  readonly routing: {
    readonly intent: ValidIntent | undefined;
    /** Why the last routing apply failed, while it stays failed. */
    readonly applyError: string | undefined;
  };
  /** FRR's sessions, or the error reading them (FRR not answering). */
  readonly sessions: readonly BgpSession[] | Error;
  /** Prefixes advertised per uplink (only uplinks with an Established session). */
  readonly advertised: ReadonlyMap<string, readonly string[]>;
  /** Loopback differences (empty: correct), or the error reading them. */
  readonly loopbacks: readonly string[] | Error;
  /** FRR's daemons, the uplinks' named troubles, the routes in the kernel (undefined before an intent). */
  readonly diagnosis: RoutingDiagnosis | undefined;
  readonly controller: {
    readonly connected: boolean;
    readonly detail: string;
    /** The last update the agent refused, while no later one was applied. */
    readonly refused: string | undefined;
  };
}

const RANK: Record<Level, number> = { ok: 0, degraded: 1, failed: 2 };

/** The worst of the checks' statuses (ok when there are none). */
export function overall(checks: readonly Check[]): Level {
  return checks.reduce<Level>((worst, c) => (RANK[c.status] > RANK[worst] ? c.status : worst), 'ok');
}

const check = (name: string, status: Level, reason: string): Check => ({ name, status, reason });

function firewallChecks(o: Observations['firewall']): Check[] {
  const out: Check[] = [];
  if (o.version === undefined) out.push(check('firewall', 'failed', 'no policy applied yet: the host is not protected'));
  else if (o.repairFailing) out.push(check('firewall', 'failed', `table inet hostnet differs from ${o.version} and cannot be restored`));
  else out.push(check('firewall', 'ok', `policy ${o.version} in force; ${o.repairs} drift repairs since start`));
  out.push(o.warnings.length > 0
    ? check('firewall-coexistence', 'degraded', `${o.warnings.join('; ')}: every base chain on input must accept a packet, so these drop what hostnet allows; `
      + 'remove them (nft delete table ...; iptables -F INPUT) and let hostnet\'s ACL decide')
    : check('firewall-coexistence', 'ok', 'no other table or iptables rule drops input'));
  return out;
}

/** The /32s and /128s a network's loopback carries, as FRR prints prefixes. */
const asPrefixes = (addresses: readonly string[]): string[] =>
  addresses.map((a) => (a.includes('/') ? a : `${a}/${a.includes(':') ? 128 : 32}`));

/** The frr check when FRR's daemons are not all running: which, and who (if anyone) restarts them. */
function daemonsDown(d: RoutingDiagnosis | undefined): Check | undefined {
  const p = d?.processes;
  if (!p) return undefined;
  const dead = [p.zebra, p.bgpd].filter((x) => !x.running);
  if (dead.length === 0) return undefined;
  const which = dead.map((x) => `${x.name}${x.pid ? ` (pid ${x.pid} gone)` : ''}`).join(' and ');
  return check('frr', 'failed', `FRR's ${which} ${dead.length > 1 ? 'are' : 'is'} not running: the host keeps the routes it has but learns nothing new; `
    + (p.supervised ? 'watchfrr restarts it (systemd\'s frr.service)' : 'nothing supervises FRR here (no watchfrr): start FRR again'));
}

function routingChecks(o: Observations): Check[] {
  const intent = o.routing.intent;
  if (o.routing.applyError !== undefined) {
    return [check('routing', 'failed', `routing intent not applied: ${o.routing.applyError}`)];
  }
  if (!intent) return [check('routing', 'failed', 'no routing intent applied yet')];
  const out: Check[] = [];
  const d = o.diagnosis;
  const down = daemonsDown(d);
  if (down) {
    out.push(down);
  } else if (o.sessions instanceof Error) {
    out.push(check('frr', 'failed', `FRR does not answer: ${o.sessions.message}`));
  } else if (d?.listenMismatch) {
    out.push(check('frr', 'degraded', d.listenMismatch));
  } else {
    out.push(check('frr', 'ok', `zebra and bgpd answer; ${o.sessions.length} sessions`));
  }
  if (!down && !(o.sessions instanceof Error)) {
    const sessions = o.sessions;
    const uplinks = [...new Set(intent.networks.flatMap((n) => n.uplinks))];
    const up = uplinks.filter((u) => sessions.some((s) => s.peer === u && s.state === 'Established'));
    for (const u of uplinks) {
      const s = sessions.find((x) => x.peer === u);
      if (s?.state === 'Established') {
        out.push(check(`bgp:${u}`, 'ok', `Established with AS ${s.remoteAs}`));
        continue;
      }
      // Every uplink down: the host is cut off; one of several: it runs without redundancy.
      const cause = d?.uplinks.get(u);
      const state = s ? `session is ${s.state}` : 'no session configured in FRR';
      out.push(check(`bgp:${u}`, up.length === 0 ? 'failed' : 'degraded', cause ? `${state}: ${cause}` : state));
    }
    const wrong: string[] = [];
    for (const u of up) {
      const want = intent.networks.filter((n) => n.uplinks.includes(u)).flatMap((n) => asPrefixes([...n.v4, ...n.v6])).sort();
      const have = [...(o.advertised.get(u) ?? [])].sort();
      if (want.join(',') !== have.join(',')) wrong.push(`${u} advertises [${have.join(', ')}], intended [${want.join(', ')}]`);
    }
    out.push(wrong.length > 0 ? check('bgp-advertised', 'degraded', wrong.join('; '))
      : check('bgp-advertised', 'ok', up.length > 0 ? 'each uplink advertises exactly the own addresses' : 'no session to advertise on'));
    if (d?.routes !== undefined) {
      const n = d.routes.length;
      out.push(n === 0
        ? check('routes', 'ok', `${d.routesChecked} routes from the ToRs in the kernel, each with its loopback's source address`)
        : check('routes', up.length === 0 ? 'failed' : 'degraded', `${n} of ${d.routesChecked} routes from the ToRs are not usable: ${d.routes.slice(0, 3).join('; ')}${n > 3 ? `; and ${n - 3} more` : ''}`));
    }
  }
  if (o.loopbacks instanceof Error) out.push(check('loopbacks', 'failed', `cannot read the loopbacks: ${o.loopbacks.message}`));
  else if (o.loopbacks.length > 0) out.push(check('loopbacks', 'degraded', o.loopbacks.join('; ')));
  else out.push(check('loopbacks', 'ok', intent.networks.map((n) => `${n.loopback} carries ${[...n.v4, ...n.v6].join(', ') || 'nothing'}`).join('; ')));
  return out;
}

function controllerCheck(o: Observations['controller']): Check {
  if (o.refused !== undefined) return check('controller', 'degraded', `refused the controller's last update: ${o.refused}`);
  return o.connected ? check('controller', 'ok', `connected to ${o.detail}`)
    : check('controller', 'degraded', `not connected (${o.detail}); the applied state stays in force`);
}

/** Every check from one round of observations. Pure. */
export function evaluate(o: Observations): Check[] {
  return [...firewallChecks(o.firewall), ...routingChecks(o), controllerCheck(o.controller)];
}

export interface AgentEvent {
  readonly kind: string;
  readonly detail: string;
  readonly time: Date;
}

const STATUS_OF: Record<Level, HealthStatus> = {
  ok: HealthStatus.OK, degraded: HealthStatus.DEGRADED, failed: HealthStatus.FAILED,
};

export interface TrackerOptions {
  /** Events kept and sent with every report. */
  readonly maxEvents?: number;
  /** Events older than this are dropped. */
  readonly eventTtlMs?: number;
  readonly now?: () => Date;
}

/** The checks over time: since when, recent events, and whether anything changed since the last report. */
export class HealthTracker {
  private checks: readonly Check[] = [];
  private readonly since = new Map<string, { status: Level; since: Date }>();
  private events: AgentEvent[] = [];
  private sessions: readonly SessionStatus[] = [];
  private reportedKey = '';

  constructor(private readonly o: TrackerOptions = {}) {}

  private now(): Date {
    return this.o.now?.() ?? new Date();
  }

  /** Records one round of checks. */
  update(checks: readonly Check[]): void {
    const now = this.now();
    for (const c of checks) {
      const prev = this.since.get(c.name);
      if (prev?.status !== c.status) this.since.set(c.name, { status: c.status, since: now });
    }
    for (const name of [...this.since.keys()]) if (!checks.some((c) => c.name === name)) this.since.delete(name);
    this.checks = checks;
  }

  /** Records the latest view of the BGP sessions (a change in them is a change of the picture). */
  updateSessions(sessions: readonly SessionStatus[]): void {
    this.sessions = sessions;
  }

  addEvent(e: AgentEvent): void {
    this.events.push(e);
    this.prune();
  }

  private prune(): void {
    const oldest = this.now().getTime() - (this.o.eventTtlMs ?? 3_600_000);
    this.events = this.events.filter((e) => e.time.getTime() >= oldest).slice(-(this.o.maxEvents ?? 20));
  }

  get status(): Level {
    return overall(this.checks);
  }

  current(): { status: Level; checks: (Check & { since: Date })[]; events: AgentEvent[] } {
    this.prune();
    return {
      status: this.status,
      checks: this.checks.map((c) => ({ ...c, since: this.since.get(c.name)?.since ?? this.now() })),
      events: [...this.events],
    };
  }

  /** What identifies the picture: a different key means a report is due now. */
  private key(): string {
    return JSON.stringify([this.checks.map((c) => [c.name, c.status, c.reason]), this.events.map((e) => [e.kind, e.time.getTime()]),
      // Not the prefixes received: every host created anywhere changes them on every host; heartbeats carry them.
      this.sessions.map((x) => [x.uplink, x.state, x.remoteAs, x.advertised])]);
  }

  /** True when the checks or events changed since the last report(). */
  get changed(): boolean {
    return this.key() !== this.reportedKey;
  }

  /** The last report did not arrive: the picture counts as changed again. */
  unreported(): void {
    this.reportedKey = '';
  }

  /** The report to send now; marks the picture as reported. */
  report(fields: {
    hostId: string; agentVersion: string; firewallVersion: string; routingVersion: string; repairsTotal: number; heartbeatMs: number;
  }): HealthReport {
    const c = this.current();
    this.reportedKey = this.key();
    return create(HealthReportSchema, {
      hostId: fields.hostId,
      status: STATUS_OF[c.status],
      checks: c.checks.map((x) => ({ name: x.name, status: STATUS_OF[x.status], reason: x.reason, since: timestampFromDate(x.since) })),
      events: c.events.map((e) => ({ kind: e.kind, detail: e.detail, time: timestampFromDate(e.time) })),
      firewallVersion: fields.firewallVersion,
      routingVersion: fields.routingVersion,
      agentVersion: fields.agentVersion,
      observedAt: timestampFromDate(this.now()),
      repairsTotal: BigInt(fields.repairsTotal),
      heartbeatSeconds: Math.max(1, Math.round(fields.heartbeatMs / 1000)),
      sessions: this.sessions.map((x) => ({ ...x, advertised: [...x.advertised] })),
    });
  }
}
