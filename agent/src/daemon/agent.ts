// The agent daemon: the last applied state from disk first (a host that
// boots while the controller is away comes up protected), then the Sync
// stream; health checks on a timer and on every repair event, reported to
// the controller when something changes and as a heartbeat; READY, STATUS
// and WATCHDOG to systemd; metrics and /status on localhost. Stopping (or
// crashing) never touches the firewall, the loopbacks or FRR.
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Logger } from '../../../common/log.js';
import type { Firewall } from '../firewall/firewall.js';
import type { BgpSession } from '../routing/bgp-state.js';
import type { ValidIntent } from '../routing/intent.js';
import type { Routing } from '../routing/routing.js';
import type { AgentConfig } from '../config.js';
import { SyncClient, type SyncState } from '../sync/client.js';
import { type Identity, IdentityKeeper } from '../sync/keeper.js';
import { cleanupState, loadState, saveState } from '../sync/state-file.js';
import { HostApplier } from './applier.js';
import { type AgentEvent, HealthTracker, type Observations, evaluate, sessionStatuses } from './health.js';
import { AgentMetrics, serveLocal } from './metrics.js';
import type { Notifier } from './notify.js';
import type { StatusView } from './status-view.js';

/** The FRR reads the health checks need (BgpReader; fakes in unit tests). */
export interface BgpView {
  sessions(): Promise<BgpSession[]>;
  advertised(peer: string, family: 4 | 6): Promise<string[]>;
}

export interface AgentDeps {
  readonly config: AgentConfig;
  readonly version: string;
  readonly log: Logger;
  readonly firewall: Firewall;
  readonly routing: Routing;
  readonly bgp: BgpView;
  readonly notify: Notifier;
  /** This host's certificate: loaded, or obtained by enrollment (throws saying why it cannot be). */
  readonly identity: () => Promise<Identity>;
}

export type { Identity } from '../sync/keeper.js';

/** Short pause before an event-triggered check round, so a burst of events makes one report. */
const SOON_MS = 50;
/**
 * A round that runs longer than a heartbeat (a slow FRR, a busy machine) does
 * not make the host look silent: the picture last reported goes again as the
 * heartbeat meanwhile. A round running this long is stuck: the heartbeats stop, and the
 * host turns stale on the dashboard (under systemd the watchdog restarts it).
 */
const STUCK_ROUND_MS = 30_000;

export class Agent {
  private readonly applier: HostApplier;
  private readonly sync: SyncClient;
  private readonly tracker = new HealthTracker();
  private readonly metrics = new AgentMetrics();
  private server: Server | undefined;
  private tickTimer: NodeJS.Timeout | undefined;
  private watchdogTimer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private roundStarted = 0;
  private reporting: Promise<void> | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private again = false;
  private stopped = false;
  private readyFrom: 'cache' | 'controller' | undefined;
  private syncState: { state: SyncState; detail: string; since: Date } = { state: 'stopped', detail: 'not started', since: new Date() };
  private refused: string | undefined;
  private sessions: readonly BgpSession[] | Error = [];
  private lastTickDone = Date.now();
  private lastReport = 0;
  private lastReportError: string | undefined;
  private lastDriftCheck = Date.now();
  /** Between heartbeats: the config's until the controller says (every ReportHealth answer does). */
  private heartbeatMs: number;
  private readonly startedAt = new Date();
  private readonly keeper: IdentityKeeper;

  constructor(private readonly d: AgentDeps) {
    this.heartbeatMs = d.config.heartbeatMs;
    this.applier = new HostApplier(d.firewall, d.routing, {
      onApplied: (part, version, ms) => {
        this.metrics.applied(part, ms);
        d.log.info({ part, version, ms: Math.round(ms) }, 'applied');
      },
    });
    this.sync = new SyncClient({
      hostId: d.config.hostId,
      agentVersion: d.version,
      addresses: d.config.controller.addresses,
      credentials: () => this.keeper.credentials(),
      applier: this.applier,
      log: d.log,
      save: (s) => saveState(d.config.stateDir, s),
      onState: (state, detail) => {
        this.syncState = { state, detail, since: new Date() };
        d.log.info({ state, detail }, 'controller connection');
        this.soon();
      },
      onUpdate: (u) => {
        this.metrics.update(u);
        if (u.error) {
          this.refused = `${u.version}: ${u.error.message}`;
          this.event({ kind: 'update-refused', detail: `refused ${u.kind} ${u.version}: ${u.error.message}`, time: new Date() });
        } else {
          this.refused = undefined;
          this.markReady('controller');
        }
      },
    });
    this.keeper = new IdentityKeeper({ obtain: d.identity, sync: this.sync, event: (e) => this.event(e) });
  }

  /** Feeds a repair or warning event from the firewall or routing; reported at once. */
  event(e: AgentEvent): void {
    this.tracker.addEvent(e);
    this.metrics.event(e.kind);
    this.soon();
  }

  /**
   * Applies the cached state (if any), starts drift watching, the local
   * endpoint, the Sync stream, the health loop and the watchdog.
   */
  async start(): Promise<void> {
    const { config, log } = this.d;
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    await cleanupState(config.stateDir);
    const cached = await loadState(config.stateDir).catch((err: unknown) => {
      this.event({ kind: 'cached-state-unreadable', detail: `${config.stateDir}: ${(err as Error).message}; waiting for the controller`, time: new Date() });
      return undefined;
    });
    if (cached?.firewall) {
      try {
        await this.applier.applySnapshot(cached);
        log.info({ firewall: cached.firewall.version, routing: cached.routing?.version }, 'cached state applied');
      } catch (err) {
        this.event({ kind: 'cached-state-failed', detail: `could not apply the cached state: ${(err as Error).message}`, time: new Date() });
      }
      if (this.d.firewall.version !== undefined) this.markReady('cache');
    }
    // Without drift watching the agent still applies and reports; the event says what is missing.
    await this.d.firewall.watch().catch((err: unknown) => {
      this.event({ kind: 'firewall-watch-failed', detail: `cannot watch the ruleset for drift: ${(err as Error).message}`, time: new Date() });
    });
    await this.d.routing.watch().catch((err: unknown) => {
      this.event({ kind: 'frr-watch-failed', detail: `cannot follow FRR's command log for hand edits: ${(err as Error).message}; the periodic check remains`, time: new Date() });
    });
    this.server = await serveLocal(config.metricsListen, this.metrics, () => this.status());
    // The cached state is in force already; the stream waits for a certificate (enrollment at first start).
    void this.keeper.start();
    this.schedule(0);
    this.heartbeatTimer = setInterval(() => this.heartbeatDuringRound(), 500);
    const wd = this.d.notify.watchdogMs();
    if (wd > 0) {
      // Pings only while the health loop keeps completing rounds: a stuck loop stops them and systemd restarts us.
      this.watchdogTimer = setInterval(() => {
        if (Date.now() - this.lastTickDone < wd) this.d.notify.watchdog();
      }, Math.max(100, Math.floor(wd / 3)));
    }
  }

  private markReady(from: 'cache' | 'controller'): void {
    if (this.readyFrom || this.d.firewall.version === undefined) return;
    this.readyFrom = from;
    this.d.notify.ready();
    this.d.log.info({ from }, 'ready: a firewall policy is in force');
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    if (this.tickTimer) clearTimeout(this.tickTimer);
    this.tickTimer = setTimeout(() => { void this.tick(); }, ms);
  }

  /** A check round soon (after an event or a connection change). */
  private soon(): void {
    if (this.ticking) this.again = true;
    else this.schedule(SOON_MS);
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.stopped) return;
    this.tickTimer = undefined;
    this.roundStarted = Date.now();
    this.ticking = this.round().catch((err: unknown) => {
      this.d.log.error({ err: (err as Error).message }, 'health round failed');
    });
    await this.ticking;
    this.ticking = undefined;
    this.lastTickDone = Date.now();
    const next = this.again ? SOON_MS : this.d.config.checkIntervalMs;
    this.again = false;
    this.schedule(next);
  }

  private async round(): Promise<void> {
    if (this.applier.routingError !== undefined && await this.applier.retryRouting()) {
      // The refused update is in force now: saved, and the controller told through a new Hello.
      await saveState(this.d.config.stateDir, this.applier.current()).catch(() => undefined);
      this.refused = undefined;
      this.sync.resync();
    }
    if (this.d.routing.version && Date.now() - this.lastDriftCheck >= this.d.config.frrDriftCheckMs) {
      this.lastDriftCheck = Date.now();
      await this.d.routing.checkFrrDrift().catch((err: unknown) => {
        this.d.log.warn({ err: (err as Error).message }, 'FRR drift check failed');
      });
    }
    const observed = await this.observe();
    const checks = evaluate(observed);
    this.tracker.update(checks);
    this.tracker.updateSessions(sessionStatuses(observed));
    const connected = this.syncState.state === 'streaming';
    this.metrics.health(this.tracker.status, checks, {
      firewall: this.d.firewall.repairs, frr: this.d.routing.frrRepairs, loopbacks: this.d.routing.loopbackRepairs,
    }, connected);
    const bad = checks.filter((c) => c.status !== 'ok').map((c) => `${c.name}: ${c.reason}`);
    this.d.notify.status(`${this.tracker.status}; firewall ${this.d.firewall.version ?? 'none'}, routing ${this.d.routing.version ?? 'none'}; `
      + `controller ${this.syncState.state}${bad.length ? `; ${bad.join('; ')}` : ''}`);
    await this.maybeReport();
  }

  private async observe(): Promise<Observations> {
    const intent = this.d.routing.intent;
    let advertised = new Map<string, string[]>();
    if (intent) {
      this.sessions = await this.d.bgp.sessions().catch((err: unknown) => err as Error);
      if (!(this.sessions instanceof Error)) advertised = await this.advertised(intent, this.sessions);
    }
    const loopbacks = await this.d.routing.loopbackProblems().catch((err: unknown) => err as Error);
    const diagnosis = intent ? await this.d.routing.diagnose().catch(() => undefined) : undefined;
    // A safety net for the repair on loopback restore and for FRR's start: routes the kernel lacks (or has without
    // their source) while the loopbacks are right are installed again.
    if (diagnosis?.routes && diagnosis.routes.length > 0 && Array.isArray(loopbacks) && loopbacks.length === 0) {
      await this.d.routing.reinstallRoutes().catch(() => undefined);
    }
    if (diagnosis?.listenMismatch) await this.d.routing.ensureStartOptions();
    return {
      firewall: {
        version: this.d.firewall.version,
        repairFailing: this.d.firewall.repairFailing,
        repairs: this.d.firewall.repairs,
        warnings: this.d.firewall.warnings,
      },
      routing: { intent, applyError: this.applier.routingError },
      sessions: this.sessions,
      advertised,
      loopbacks,
      diagnosis,
      controller: { connected: this.syncState.state === 'streaming', detail: this.syncState.detail, refused: this.refused },
    };
  }

  /** What each uplink with an Established session advertises. */
  private async advertised(intent: ValidIntent, sessions: readonly BgpSession[]): Promise<Map<string, string[]>> {
    const out = new Map<string, string[]>();
    const v6 = intent.networks.some((n) => n.v6.length > 0);
    for (const s of sessions) {
      if (s.state !== 'Established' || !intent.networks.some((n) => n.uplinks.includes(s.peer))) continue;
      const routes = await this.d.bgp.advertised(s.peer, 4).catch(() => [] as string[]);
      if (v6) routes.push(...await this.d.bgp.advertised(s.peer, 6).catch(() => [] as string[]));
      out.set(s.peer, routes);
    }
    return out;
  }

  /**
   * While a long round runs: the picture last reported, again, as the heartbeat when one is due (see
   * STUCK_ROUND_MS). A picture not yet reported (the first, a change, or one seen while disconnected) waits
   * for the round's end, which looks again: sent now, it could be out of date already (a stream that came back).
   */
  private heartbeatDuringRound(): void {
    if (!this.ticking || this.reporting || Date.now() - this.roundStarted > STUCK_ROUND_MS || this.tracker.changed) return;
    void this.maybeReport();
  }

  /** Sends a report when the picture changed or a heartbeat is due, and a stream is open; one at a time. */
  private async maybeReport(): Promise<void> {
    while (this.reporting) await this.reporting;
    this.reporting = this.reportNow().finally(() => { this.reporting = undefined; });
    await this.reporting;
  }

  private async reportNow(): Promise<void> {
    if (this.syncState.state !== 'streaming') return;
    if (!this.tracker.changed && Date.now() - this.lastReport < this.heartbeatMs) return;
    const v = this.applier.versions();
    const report = this.tracker.report({
      hostId: this.d.config.hostId, agentVersion: this.d.version, firewallVersion: v.firewall, routingVersion: v.routing,
      repairsTotal: this.d.firewall.repairs + this.d.routing.frrRepairs + this.d.routing.loopbackRepairs,
      heartbeatMs: this.heartbeatMs,
    });
    try {
      const answer = await this.sync.report(report);
      if (answer.heartbeatSeconds > 0 && answer.heartbeatSeconds * 1000 !== this.heartbeatMs) {
        this.heartbeatMs = answer.heartbeatSeconds * 1000;
        this.d.log.info({ heartbeatSeconds: answer.heartbeatSeconds }, 'heartbeat interval set by the controller');
      }
      this.lastReport = Date.now();
      this.lastReportError = undefined;
    } catch (err) {
      // Sent again on the next round: forget that this picture was reported.
      this.lastReportError = (err as Error).message;
      this.lastReport = 0;
      this.tracker.unreported();
      this.d.log.warn({ err: this.lastReportError }, 'health report not delivered');
    }
  }

  /** What `hostnet-agent status` prints (served at /status). */
  status(): StatusView {
    const h = this.tracker.current();
    const v = this.applier.versions();
    return {
      hostId: this.d.config.hostId,
      agentVersion: this.d.version,
      pid: process.pid,
      startedAt: this.startedAt.toISOString(),
      ready: this.readyFrom ? `yes (first state from the ${this.readyFrom})` : 'no: no firewall policy in force yet',
      status: h.status,
      firewall: { version: v.firewall, repairs: this.d.firewall.repairs, warnings: this.d.firewall.warnings },
      routing: {
        version: v.routing, frrRepairs: this.d.routing.frrRepairs, loopbackRepairs: this.d.routing.loopbackRepairs,
        error: this.applier.routingError ?? null,
      },
      controller: {
        state: this.syncState.state, detail: this.syncState.detail, since: this.syncState.since.toISOString(),
        updatesApplied: this.sync.acked, updatesRefused: this.sync.nacked, refused: this.refused ?? null,
        lastReport: this.lastReport ? new Date(this.lastReport).toISOString() : null, lastReportError: this.lastReportError ?? null,
        certificate: this.keeper.identity ? {
          serial: this.keeper.identity.serial, notAfter: this.keeper.identity.notAfter.toISOString(), renewAt: new Date(this.keeper.identity.renewAt()).toISOString(), renewals: this.keeper.renewals,
        } : null,
      },
      checks: h.checks.map((c) => ({ ...c, since: c.since.toISOString() })),
      sessions: this.sessions instanceof Error ? { error: this.sessions.message } : this.sessions,
      events: h.events.map((e) => ({ ...e, time: e.time.toISOString() })),
    };
  }

  /** Stops syncing, checking and serving. Rules, loopbacks and FRR stay exactly as they are. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.d.notify.stopping();
    this.sync.stop();
    this.keeper.stop();
    if (this.tickTimer) clearTimeout(this.tickTimer);
    if (this.watchdogTimer) clearInterval(this.watchdogTimer);
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.ticking;
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.d.firewall.close();
    this.d.routing.close();
  }
}
