// The agent's ToR mode, on an FRR-based switch: the same Sync stream as a
// host's agent (its certificate and Hello name the switch), whose snapshots
// carry the switch's whole frr.conf as the controller compiled it (routed
// ports with their hijack filters, pool ports, fabric ports). Each is
// applied with frr-reload (hitless: only what differs changes, no other
// port's session resets), acknowledged, and kept on disk for the next start;
// one that FRR refuses is answered with a Nack and the previous one stays in
// force. A hand edit of the running configuration is found by the periodic
// drift check and undone. Its health (the configuration in force, each
// neighbor's BGP session) goes to the controller as a host's does, on change
// and as a heartbeat. Stopping leaves FRR as it is.
import { create, toBinary } from '@bufbuild/protobuf';
import { timestampNow } from '@bufbuild/protobuf/wkt';
import { mkdir } from 'node:fs/promises';
import type { Logger } from '../../../common/log.js';
import { type Snapshot, SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { SwitchConfig } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type HealthCheck, HealthReportSchema, HealthStatus } from '../../../proto/gen/hostnet/v1/health_pb.js';
import type { BgpSession } from '../routing/bgp-state.js';
import type { AgentConfig } from '../config.js';
import { type FrrConfigurer, isEmptyDiff } from '../routing/frr-apply.js';
import { type Applier, SyncClient } from '../sync/client.js';
import { type Identity, IdentityKeeper } from '../sync/keeper.js';
import { loadState, saveState } from '../sync/state-file.js';

export interface TorDeps {
  /** The agent's configuration; hostId is the switch's name. */
  readonly config: AgentConfig;
  readonly version: string;
  readonly log: Logger;
  readonly frr: FrrConfigurer;
  /** FRR's BGP sessions (BgpReader). */
  readonly bgp: { sessions(): Promise<BgpSession[]> };
  readonly identity: () => Promise<Identity>;
}

/**
 * The switch's health: its configuration from the controller in force, and
 * each neighbor the configuration names (host ports and fabric ports) with
 * its session. A host port whose session is not up degrades the switch (a
 * deployed server not peering); FRR not answering fails it. Pure.
 */
export function switchHealth(config: SwitchConfig | undefined, sessions: readonly BgpSession[] | Error): { status: HealthStatus; checks: Omit<HealthCheck, '$typeName'>[]; sessions: { uplink: string; state: string; remoteAs: number; prefixesReceived: number; advertised: string[] }[] } {
  const checks: Omit<HealthCheck, '$typeName'>[] = [config
    ? { name: 'switch-config', status: HealthStatus.OK, reason: `the controller's configuration ${config.version} is in force` }
    : { name: 'switch-config', status: HealthStatus.FAILED, reason: 'no configuration from the controller yet' }];
  const neighbors = config ? [...config.frrConf.matchAll(/^ neighbor (\S+) interface remote-as /gm)].map((m) => m[1] as string) : [];
  const found = sessions instanceof Error ? [] : sessions;
  if (sessions instanceof Error) checks.push({ name: 'bgp', status: HealthStatus.FAILED, reason: `FRR does not answer: ${sessions.message}` });
  else {
    for (const n of neighbors) {
      const state = found.find((x) => x.peer === n)?.state ?? 'not configured';
      checks.push({ name: `bgp:${n}`, status: state === 'Established' ? HealthStatus.OK : HealthStatus.DEGRADED, reason: state === 'Established' ? 'established' : `session ${state}` });
    }
  }
  return {
    status: Math.max(...checks.map((c) => c.status)),
    checks: checks.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
    sessions: neighbors.sort().map((n) => {
      const x = found.find((y) => y.peer === n);
      return { uplink: n, state: x?.state ?? 'not configured', remoteAs: x?.remoteAs ?? 0, prefixesReceived: x?.prefixesReceived ?? 0, advertised: [] };
    }),
  };
}

/** Applies switch configurations; refuses anything else (a host's policy sent to a switch is a mistake). */
export class SwitchApplier implements Applier {
  private applied: SwitchConfig | undefined;
  /** An apply or a drift check in progress: they run one at a time (each writes FRR's candidate file). */
  private busy: Promise<unknown> = Promise.resolve();

  constructor(private readonly name: string, private readonly frr: FrrConfigurer, private readonly log: Logger) {}

  get config(): SwitchConfig | undefined {
    return this.applied;
  }

  versions(): { firewall: string; routing: string; switch: string } {
    return { firewall: '', routing: '', switch: this.applied?.version ?? '' };
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.busy.then(fn);
    this.busy = next.catch(() => undefined);
    return next;
  }

  applySnapshot(s: Snapshot): Promise<void> {
    return this.exclusive(() => this.applyNow(s));
  }

  private async applyNow(s: Snapshot): Promise<void> {
    const c = s.switchConfig;
    if (!c) throw new Error('this agent runs in ToR mode: it applies a switch configuration, and the update has none');
    if (c.switchName !== this.name) throw new Error(`the configuration is switch ${c.switchName}'s, this is ${this.name}`);
    const diff = await this.frr.apply(c.frrConf, this.applied?.frrConf);
    this.applied = c;
    this.log.info({ version: c.version, added: diff.add.length, removed: diff.remove.length }, 'switch configuration applied');
  }

  applyDelta(): Promise<void> {
    return Promise.reject(new Error('this agent runs in ToR mode: it takes whole switch configurations only'));
  }

  current(): Snapshot {
    return create(SnapshotSchema, this.applied ? { switchConfig: this.applied } : {});
  }

  /** Puts the applied configuration back if FRR's running one differs (a hand edit); returns what was undone. */
  repair(): Promise<string[]> {
    return this.exclusive(() => this.repairNow());
  }

  private async repairNow(): Promise<string[]> {
    const c = this.applied;
    if (!c) return [];
    const diff = await this.frr.diff(c.frrConf);
    if (isEmptyDiff(diff)) return [];
    await this.frr.apply(c.frrConf, undefined, { known: diff });
    return [...diff.add.map((l) => `+${l}`), ...diff.remove.map((l) => `-${l}`)];
  }
}

export class TorAgent {
  private readonly applier: SwitchApplier;
  private readonly sync: SyncClient;
  private readonly keeper: IdentityKeeper;
  private driftTimer: NodeJS.Timeout | undefined;
  private healthTimer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private reporting: Promise<void> | undefined;
  /** What the last report said (without its time and counters), and when it went. */
  private lastReport = { content: '', at: 0 };
  private heartbeatMs: number;

  constructor(private readonly d: TorDeps) {
    this.heartbeatMs = d.config.heartbeatMs;
    const event = (e: { kind: string; detail: string }): void => d.log.warn({ event: e.kind }, e.detail);
    this.applier = new SwitchApplier(d.config.hostId, d.frr, d.log);
    this.sync = new SyncClient({
      hostId: d.config.hostId, agentVersion: d.version, addresses: d.config.controller.addresses,
      credentials: () => this.keeper.credentials(), applier: this.applier, log: d.log,
      save: (s) => saveState(d.config.stateDir, s),
      onState: (state, detail) => d.log.info({ state, detail }, 'controller connection'),
      onUpdate: (u) => { if (u.error) event({ kind: 'update-refused', detail: `refused ${u.version}: ${u.error.message}` }); },
    });
    this.keeper = new IdentityKeeper({ obtain: d.identity, sync: this.sync, event });
  }

  /** Applies the configuration kept from the last run, then connects and starts the drift check. */
  async start(): Promise<void> {
    const { config, log } = this.d;
    await mkdir(config.stateDir, { recursive: true, mode: 0o700 });
    const cached = await loadState(config.stateDir).catch((err: unknown) => {
      log.warn({ err }, 'the kept configuration is unreadable; waiting for the controller');
      return undefined;
    });
    if (cached?.switchConfig) {
      await this.applier.applySnapshot(cached).catch((err: unknown) => log.error({ err }, 'could not apply the kept configuration'));
    }
    void this.keeper.start();
    this.driftTimer = setInterval(() => {
      this.checking ??= this.applier.repair().then((undone) => {
        if (undone.length > 0) log.warn({ event: 'frr-drift-repaired', lines: undone.slice(0, 20) }, `FRR's running configuration differed from the controller's (${undone.length} lines); put back`);
      }, (err: unknown) => log.error({ err }, 'drift check failed')).finally(() => { this.checking = undefined; });
    }, config.frrDriftCheckMs);
    this.healthTimer = setInterval(() => { this.reporting ??= this.report().finally(() => { this.reporting = undefined; }); }, config.checkIntervalMs);
  }

  /** Checks and reports when something changed or a heartbeat is due (and the stream is up). */
  private async report(): Promise<void> {
    const h = switchHealth(this.applier.config, await this.d.bgp.sessions().catch((err: unknown) => err as Error));
    const report = create(HealthReportSchema, {
      hostId: this.d.config.hostId, status: h.status, checks: h.checks, sessions: h.sessions, routingVersion: this.applier.config?.version ?? '',
      agentVersion: this.d.version, heartbeatSeconds: Math.round(this.heartbeatMs / 1000),
    });
    // Prefix counts move with every host created anywhere: heartbeats carry them, they do not make a report due.
    const content = Buffer.from(toBinary(HealthReportSchema, { ...report, sessions: report.sessions.map((x) => ({ ...x, prefixesReceived: 0 })) })).toString('base64');
    if (content === this.lastReport.content && Date.now() - this.lastReport.at < this.heartbeatMs) return;
    if (this.sync.status !== 'streaming') return;
    report.observedAt = timestampNow();
    try {
      const answer = await this.sync.report(report);
      if (answer.heartbeatSeconds > 0) this.heartbeatMs = answer.heartbeatSeconds * 1000;
      this.lastReport = { content, at: Date.now() };
    } catch (err) {
      this.d.log.warn({ err }, 'health report failed; retried at the next check');
    }
  }

  /** The configuration in force, if any. */
  get applied(): SwitchConfig | undefined {
    return this.applier.config;
  }

  async stop(): Promise<void> {
    this.sync.stop();
    this.keeper.stop();
    if (this.driftTimer) clearInterval(this.driftTimer);
    if (this.healthTimer) clearInterval(this.healthTimer);
    await this.checking;
    await this.reporting;
  }
}
