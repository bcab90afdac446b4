// The agent's ToR mode, on an FRR-based switch: the same Sync stream as a
// host's agent (its certificate and Hello name the switch), whose snapshots
// carry the switch's whole frr.conf as the controller compiled it (routed
// ports with their hijack filters, pool ports, fabric ports). Each is
// applied with frr-reload (hitless: only what differs changes, no other
// port's session resets), acknowledged, and kept on disk for the next start;
// one that FRR refuses is answered with a Nack and the previous one stays in
// force. A hand edit of the running configuration is found by the periodic
// drift check and undone. Stopping leaves FRR as it is.
import { create } from '@bufbuild/protobuf';
import { mkdir } from 'node:fs/promises';
import type { Logger } from '../../../common/log.js';
import { type Snapshot, SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { SwitchConfig } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
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
  readonly identity: () => Promise<Identity>;
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
  private checking: Promise<void> | undefined;

  constructor(private readonly d: TorDeps) {
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
  }

  /** The configuration in force, if any. */
  get applied(): SwitchConfig | undefined {
    return this.applier.config;
  }

  async stop(): Promise<void> {
    this.sync.stop();
    this.keeper.stop();
    if (this.driftTimer) clearInterval(this.driftTimer);
    await this.checking;
  }
}
