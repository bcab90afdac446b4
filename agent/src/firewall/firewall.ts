// The firewall service: applies policies and deltas with the smallest
// transaction, keeps the table as applied against anyone else's changes
// (event-driven, from nf_tables notifications), and reports what it did.
// All kernel work goes through one queue, so applies and repairs never race.
import { create } from '@bufbuild/protobuf';
import type { Logger } from '../../../common/log.js';
import {
  type FirewallPolicy, FirewallPolicySchema, PolicySourceSchema, type PolicyRule,
} from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import type { FirewallDelta } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { Action, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { type AppliedState, type Transaction, diff, snapshot } from './diff.js';
import { type FirewallModel, TABLE, buildModel, objectSetName } from './model.js';
import type { NftEvent, ElementOp } from './nfnetlink.js';
import type { NftCli } from './nft-cli.js';
import type { NftNetlink, NftNetlinkHandlers } from './nft-netlink.js';
import { PolicyError, type ValidRule, objectPrefixes, validatePolicy } from './policy.js';
import type { Addr, LengthChanges } from './prefix-set.js';
import { renderFull } from './render.js';
import { foreignDrops } from './coexistence.js';
import { type Conntrack, revokeFlows } from './conntrack.js';

export interface FirewallEvent {
  /** "firewall-drift-repaired", "firewall-repair-failed", "foreign-drop-chain", "foreign-drop-cleared", "flows-revoked". */
  readonly kind: string;
  readonly detail: string;
  readonly time: Date;
}

export interface ApplyResult {
  readonly version: string;
  /** How the kernel was changed. */
  readonly via: 'none' | 'netlink' | 'nft';
  readonly ms: number;
}

export interface FirewallDeps {
  readonly nft: NftCli;
  /** Opens the netlink seam; the firewall passes its notification handlers. */
  readonly openNetlink: (handlers: NftNetlinkHandlers) => NftNetlink;
  readonly log: Logger;
  /** Operator management prefixes from the agent config; always accepted. */
  readonly managementPrefixes?: readonly string[];
  readonly onEvent?: (event: FirewallEvent) => void;
  readonly now?: () => Date;
  /** Open flows: after a policy change, those it no longer admits are cut. */
  readonly conntrack?: Conntrack;
}

const NFPROTO_INET = 1;
const REPAIR_DEBOUNCE_MS = 20;

export class Firewall {
  private model: FirewallModel | undefined;
  private applied: AppliedState | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  private watching = false;
  private closed = false;
  private dirty = false;
  private repairTimer: NodeJS.Timeout | undefined;
  private repairFailures = 0;
  /** Foreign input chains that drop, as last scanned. */
  private foreign: string[] = [];
  private foreignDirty = false;
  private foreignTimer: NodeJS.Timeout | undefined;
  private revokeTimer: NodeJS.Timeout | undefined;
  /** Drift repairs since start. */
  repairs = 0;

  private readonly netlink: NftNetlink;

  constructor(private readonly deps: FirewallDeps) {
    this.netlink = deps.openNetlink({
      onEvent: (ev) => this.onNetlinkEvent(ev),
      onOverflow: () => this.onNetlinkOverflow(),
    });
  }

  get version(): string | undefined {
    return this.model?.version;
  }

  /** The full text a policy compiles to (what a first apply feeds nft). Pure apart from validation errors. */
  render(policy: FirewallPolicy): string {
    const model = buildModel(validatePolicy(policy, this.deps.managementPrefixes));
    return `${renderFull(model).map((l) => l.text).join('\n')}\n`;
  }

  /**
   * Validates and applies a whole policy. Throws PolicyError (bad input) or
   * NftRejectedError / NetlinkError (the kernel refused); either way the
   * running ruleset is unchanged. Idempotent.
   */
  applyPolicy(policy: FirewallPolicy): Promise<ApplyResult> {
    return this.serial(async () => {
      const model = buildModel(validatePolicy(policy, this.deps.managementPrefixes));
      return this.execute(model, this.applied ? diff(this.applied, snapshot(model)) : undefined);
    });
  }

  /**
   * Applies a delta on top of the applied version. Object element changes
   * alone go to the kernel as one netlink batch; anything else is merged into
   * a full policy and diffed. Throws PolicyError when the base version does
   * not match or the delta is invalid.
   */
  applyDelta(delta: FirewallDelta): Promise<ApplyResult> {
    return this.serial(async () => {
      const model = this.model;
      if (!model || !this.applied) throw new PolicyError('base_version', 'no policy applied yet; a snapshot is needed');
      if (delta.baseVersion !== model.version) {
        throw new PolicyError('base_version', `delta is for ${delta.baseVersion}, applied is ${model.version}`);
      }
      const onlyElements = !delta.rules && !delta.failsafe && delta.hostAddresses.length === 0
        && delta.addedObjects.length === 0 && delta.removedObjects.length === 0;
      if (!onlyElements) {
        const policy = mergeDelta(toPolicy(model), delta);
        const next = buildModel(validatePolicy(policy, this.deps.managementPrefixes));
        return this.execute(next, diff(this.applied, snapshot(next)));
      }
      return this.applyElementChanges(model, delta);
    });
  }

  /**
   * Element changes are made in place on the applied sets (copying 100k
   * prefixes per delta would cost more than the kernel update) and undone if
   * the kernel refuses them.
   */
  private async applyElementChanges(model: FirewallModel, delta: FirewallDelta): Promise<ApplyResult> {
    const applied = this.applied as AppliedState;
    const known = new Map<string, { add: Addr[]; remove: Addr[] }>();
    const undo: (() => void)[] = [];
    let lengthsChanged = false;
    const note = (id: string, family: 4 | 6, changes: LengthChanges, key: 'add' | 'remove'): void => {
      for (const [len, addrs] of changes) {
        const name = objectSetName(id, family, len);
        const entry = known.get(name) ?? { add: [], remove: [] };
        entry[key].push(...addrs);
        known.set(name, entry);
      }
    };
    try {
      delta.objectChanges.forEach((change, i) => {
        const field = `object_changes[${i}]`;
        const sets = model.objects.get(change.id);
        if (!sets) throw new PolicyError(`${field}.id`, `unknown object "${change.id.slice(0, 80)}"`);
        const add = objectPrefixes(`${field}.added`, change.added);
        const remove = objectPrefixes(`${field}.removed`, change.removed);
        for (const [family, set] of [[4, sets.v4], [6, sets.v6]] as const) {
          const c = set.change(family === 4 ? add.v4 : add.v6, family === 4 ? remove.v4 : remove.v6);
          undo.push(c.undo);
          lengthsChanged ||= c.lengthsChanged;
          note(change.id, family, c.added, 'add');
          note(change.id, family, c.removed, 'remove');
        }
        if (sets.v4.prefixCount + sets.v6.prefixCount === 0) {
          throw new PolicyError(`${field}.removed`, `object "${change.id}" would have no prefixes left`);
        }
      });
      const next: FirewallModel = { ...model, version: delta.version };
      // A length gaining its first prefix (or losing its last) adds or removes a set and rule lines.
      const desired = lengthsChanged ? snapshot(next) : { ...applied, version: delta.version };
      return await this.execute(next, diff(applied, desired, known), desired);
    } catch (err) {
      for (const u of undo.reverse()) u();
      throw err;
    }
  }

  /** Runs one transaction with our own notifications muted, then commits the new state. */
  private async execute(
    model: FirewallModel,
    tx: Transaction | undefined,
    state: AppliedState = snapshot(model),
  ): Promise<ApplyResult> {
    const started = performance.now();
    let via: ApplyResult['via'] = 'none';
    if (tx === undefined || tx.kind !== 'none') {
      via = tx?.kind === 'elements' ? 'netlink' : 'nft';
      await this.ownChange(async () => {
        if (tx === undefined) await this.deps.nft.apply(renderFull(model, state));
        else if (tx.kind === 'nft') await this.deps.nft.apply(tx.lines);
        else if (tx.kind === 'elements') await this.netlink.applyElements(toOps(tx));
      });
    }
    this.model = model;
    this.applied = { ...state, version: model.version };
    if (via !== 'none') this.scheduleRevoke();
    return { version: model.version, via, ms: performance.now() - started };
  }

  /** Soon after a change (changes in a burst share one look), in the kernel queue: cut the open flows the policy no longer admits. */
  private scheduleRevoke(): void {
    if (!this.deps.conntrack || this.revokeTimer || this.closed) return;
    this.revokeTimer = setTimeout(() => {
      this.revokeTimer = undefined;
      void this.serial(() => this.revoke());
    }, REPAIR_DEBOUNCE_MS);
  }

  private async revoke(): Promise<void> {
    const ct = this.deps.conntrack;
    const model = this.model;
    if (!ct || !model || this.closed) return;
    try {
      const { checked, revoked: cut } = await revokeFlows(ct, model);
      this.deps.log.info({ version: model.version, checked, cut: cut.length }, 'open flows checked against the policy');
      if (cut.length === 0) return;
      const shown = cut.slice(0, 5).map((f) => `${f.proto} ${f.src} -> ${f.dst}${f.dport !== undefined ? `:${f.dport}` : ''}`).join(', ');
      this.emit('flows-revoked', `${cut.length} open flow${cut.length > 1 ? 's' : ''} the policy ${model.version} no longer allows ${cut.length > 1 ? 'were' : 'was'} cut: ${shown}${cut.length > 5 ? ', ...' : ''}`);
    } catch (err) {
      this.deps.log.warn({ err: (err as Error).message }, 'cannot check open flows against the new policy');
    }
  }

  /**
   * Our own commits are not drift: stop listening while we commit, and
   * compare generation ids around it; more than one new generation means
   * someone else committed meanwhile, which gets a check like any drift.
   */
  private async ownChange(fn: () => Promise<void>): Promise<void> {
    // Unknown generations (netlink refused) skip the check but never block the apply:
    // nft's own answer is the one worth reporting.
    const before = await this.netlink.generation().catch(() => undefined);
    this.netlink.listen(false);
    try {
      await fn();
    } finally {
      if (this.watching) this.netlink.listen(true);
      const after = before === undefined ? undefined : await this.netlink.generation().catch(() => undefined);
      if (this.watching && (after === undefined || before === undefined || after - before > 1)) {
        this.scheduleRepair('another process changed the ruleset during our apply');
      }
    }
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Starts drift detection (nf_tables notifications) and looks at the other tables once; again whenever one changes. */
  async watch(): Promise<void> {
    this.netlink.listen(true);
    this.watching = true;
    await this.scanForeign();
  }

  /** Feeds one notification (nft-netlink calls this). */
  onNetlinkEvent(ev: NftEvent): void {
    if (ev.kind === 'gen') {
      if (this.dirty) {
        this.dirty = false;
        this.scheduleRepair(`changed by ${ev.process || 'unknown'} (pid ${ev.pid})`);
      }
      if (this.foreignDirty) {
        this.foreignDirty = false;
        this.scheduleForeignScan();
      }
      return;
    }
    if (ev.family === NFPROTO_INET && ev.table === TABLE) this.dirty = true;
    else this.foreignDirty = true;
  }

  /** Notifications were lost: assume the worst. */
  onNetlinkOverflow(): void {
    this.scheduleRepair('change notifications were lost');
    this.scheduleForeignScan();
  }

  private scheduleForeignScan(): void {
    if (this.foreignTimer || this.closed) return;
    this.foreignTimer = setTimeout(() => {
      this.foreignTimer = undefined;
      void this.scanForeign().catch((err: unknown) => this.deps.log.warn({ err: (err as Error).message }, 'cannot list the ruleset for other tables'));
    }, REPAIR_DEBOUNCE_MS);
  }

  /** Lists the ruleset and compares the other tables' dropping input chains with the last look; says what appeared and went. */
  private async scanForeign(): Promise<void> {
    const now = foreignDrops(await this.deps.nft.listRuleset(), TABLE);
    for (const c of now.filter((x) => !this.foreign.includes(x))) this.emit('foreign-drop-chain', `${c}: it drops what hostnet allows`);
    for (const c of this.foreign.filter((x) => !now.includes(x))) this.emit('foreign-drop-cleared', `${c.replace(/ (has policy drop|drops in).*$/, '')} no longer drops input`);
    this.foreign = now;
  }

  /** True while a drift repair keeps failing (the table is not as applied). */
  get repairFailing(): boolean {
    return this.repairFailures > 0;
  }

  /** Other tables' input chains that drop, as of the last look (empty when there are none any more). */
  get warnings(): string[] {
    return [...this.foreign];
  }

  private scheduleRepair(reason: string): void {
    if (!this.model || this.repairTimer || this.closed) return;
    this.repairTimer = setTimeout(() => {
      this.repairTimer = undefined;
      void this.serial(() => this.repair(reason));
    }, REPAIR_DEBOUNCE_MS * 2 ** Math.min(this.repairFailures, 8));
  }

  /** Re-applies the whole table atomically. */
  private async repair(reason: string): Promise<void> {
    const model = this.model;
    if (!model || this.closed) return;
    try {
      await this.ownChange(() => this.deps.nft.apply(renderFull(model)));
      this.repairs++;
      this.repairFailures = 0;
      this.emit('firewall-drift-repaired', `table inet ${TABLE} restored to ${model.version}: ${reason}`);
    } catch (err) {
      this.repairFailures++;
      this.emit('firewall-repair-failed', `could not restore table inet ${TABLE}: ${(err as Error).message}`);
      this.scheduleRepair(reason);
    }
  }

  private emit(kind: string, detail: string): void {
    const event = { kind, detail, time: this.deps.now?.() ?? new Date() };
    this.deps.log.warn({ event: kind }, detail);
    this.deps.onEvent?.(event);
  }

  /** Stops watching and closes the sockets. Never touches the ruleset: rules stay in force. */
  close(): void {
    this.closed = true;
    this.watching = false;
    if (this.repairTimer) clearTimeout(this.repairTimer);
    if (this.foreignTimer) clearTimeout(this.foreignTimer);
    if (this.revokeTimer) clearTimeout(this.revokeTimer);
    this.repairTimer = undefined;
    this.netlink.close();
  }
}

function toOps(tx: Transaction): ElementOp[] {
  if (tx.kind !== 'elements') return [];
  return tx.changes.map((c) => ({ table: TABLE, set: c.set, family: c.family, add: c.add, remove: c.remove }));
}

const ACTION_OF = { accept: Action.ALLOW, drop: Action.DENY } as const;
const PROTOCOL_OF = {
  any: Protocol.ANY, tcp: Protocol.TCP, udp: Protocol.UDP, icmp: Protocol.ICMP, icmpv6: Protocol.ICMPV6,
} as const;

function ruleToProto(r: ValidRule): Omit<PolicyRule, '$typeName'> {
  const source = create(PolicySourceSchema, r.source.kind === 'any' ? { kind: { case: 'any', value: true } }
    : r.source.kind === 'object' ? { kind: { case: 'objectId', value: r.source.id } }
    : { kind: { case: 'prefixes', value: { prefixes: [...r.source.prefixes.v4, ...r.source.prefixes.v6] } } });
  return {
    id: r.id,
    action: ACTION_OF[r.action],
    source,
    destinations: r.destinations ? [...r.destinations.v4, ...r.destinations.v6] : [],
    protocol: PROTOCOL_OF[r.protocol],
    ports: r.ports.map(([first, last]) => ({ $typeName: 'hostnet.v1.PortRange' as const, first, last })),
    comment: r.comment,
  };
}

/** The model as a FirewallPolicy again (management prefixes from config are added back by validation). */
export function toPolicy(model: FirewallModel): FirewallPolicy {
  return create(FirewallPolicySchema, {
    version: model.version,
    hostId: model.hostId,
    hostAddresses: [...model.hostAddresses.v4, ...model.hostAddresses.v6],
    objects: [...model.objects].map(([id, s]) => ({ id, prefixes: [...s.v4.prefixTexts(), ...s.v6.prefixTexts()] })),
    rules: model.rules.map(ruleToProto),
    failsafe: {
      bgpPort: model.failsafe.bgpPort,
      uplinks: [...model.failsafe.uplinks],
      bfd: model.failsafe.bfd,
      managementPrefixes: [...model.failsafe.management.v4, ...model.failsafe.management.v6],
    },
  });
}

/** A full policy: `policy` with `delta` applied. Pure. */
export function mergeDelta(policy: FirewallPolicy, delta: FirewallDelta): FirewallPolicy {
  const removed = new Set(delta.removedObjects);
  const objects = policy.objects.filter((o) => !removed.has(o.id)).map((o) => {
    const change = delta.objectChanges.find((c) => c.id === o.id);
    if (!change) return o;
    const drop = new Set(change.removed);
    return { ...o, prefixes: [...o.prefixes.filter((p) => !drop.has(p)), ...change.added] };
  });
  return create(FirewallPolicySchema, {
    ...policy,
    version: delta.version,
    objects: [...objects, ...delta.addedObjects],
    rules: delta.rules ? delta.rules.rules : policy.rules,
    failsafe: delta.failsafe ?? policy.failsafe,
    hostAddresses: delta.hostAddresses.length > 0 ? delta.hostAddresses : policy.hostAddresses,
  });
}
