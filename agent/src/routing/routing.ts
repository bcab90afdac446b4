// The routing service: validates an intent, brings the loopbacks to it, then
// FRR (loopbacks first, so FRR never installs routes whose source address
// does not exist yet). Re-applying the same intent touches nothing. Drift in
// FRR's running configuration is found by comparing it with the last applied
// text and repaired the same way.
import { readFile } from 'node:fs/promises';
import type { RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type FrrConfigurer, type ReloadDiff, isEmptyDiff } from './frr-apply.js';
import { type ValidIntent, validateIntent } from './intent.js';
import { type LoopbackChanges, type LoopbackEvent, type LoopbackSpec, Loopbacks } from './loopbacks.js';
import { type Forwarding, renderFrr } from './render-frr.js';
import type { RtLinks } from './rtnl.js';

export interface RoutingEvent {
  /** "loopback-restored", "frr-drift-repaired", "frr-repair-failed". */
  readonly kind: string;
  readonly detail: string;
  readonly time: Date;
}

export interface RoutingApplyResult {
  readonly version: string;
  readonly frr: ReloadDiff;
  readonly loopbacks: LoopbackChanges;
  readonly ms: number;
}

export interface RoutingDeps {
  readonly rt: RtLinks;
  readonly frr: FrrConfigurer;
  readonly loopbackKind: 'dummy' | 'bridge';
  readonly onEvent?: (e: RoutingEvent) => void;
  /** The kernel's forwarding switches (default: read from /proc/sys). */
  readonly forwarding?: () => Promise<Forwarding>;
}

/** Reads net.ipv4.ip_forward and net.ipv6.conf.all.forwarding. */
export async function kernelForwarding(): Promise<Forwarding> {
  const on = async (path: string) => (await readFile(path, 'utf8').catch(() => '0')).trim() === '1';
  return { ipv4: await on('/proc/sys/net/ipv4/ip_forward'), ipv6: await on('/proc/sys/net/ipv6/conf/all/forwarding') };
}

export const loopbackSpecs = (intent: ValidIntent): LoopbackSpec[] =>
  intent.networks.map((n) => ({ name: n.loopback, addresses: [...n.v4, ...n.v6] }));

export class Routing {
  private applied: { intent: ValidIntent; text: string } | undefined;
  private readonly loopbacks: Loopbacks;
  /** FRR drift repairs since start. */
  frrRepairs = 0;

  constructor(private readonly deps: RoutingDeps) {
    this.loopbacks = new Loopbacks(deps.rt, deps.loopbackKind, (e: LoopbackEvent) => deps.onEvent?.(e));
  }

  get version(): string | undefined {
    return this.applied?.intent.version;
  }

  get loopbackRepairs(): number {
    return this.loopbacks.repairs;
  }

  /** The frr.conf an intent renders to, validated against this host's interfaces. Throws IntentError. */
  async render(intent: RoutingIntent): Promise<string> {
    return renderFrr(await this.validate(intent), await this.forwarding());
  }

  /** Validates an intent against this host's interfaces without rendering or applying it. Throws IntentError. */
  async validate(intent: RoutingIntent): Promise<ValidIntent> {
    return validateIntent(intent, await this.interfaceNames());
  }

  private forwarding(): Promise<Forwarding> {
    return (this.deps.forwarding ?? kernelForwarding)();
  }

  private async interfaceNames(): Promise<Set<string>> {
    return new Set((await this.deps.rt.links()).map((l) => l.name));
  }

  /**
   * Validates, then converges loopbacks and FRR. Throws IntentError (nothing
   * touched), a netlink error, or FrrApplyError (FRR back on its previous
   * configuration).
   */
  async apply(intent: RoutingIntent): Promise<RoutingApplyResult> {
    const started = performance.now();
    const valid = await this.validate(intent);
    const text = renderFrr(valid, await this.forwarding());
    const loopbacks = await this.loopbacks.ensure(loopbackSpecs(valid));
    // The same text as last applied: FRR runs it already (hand edits are checkFrrDrift's business).
    const frr = text === this.applied?.text ? { add: [], remove: [] } : await this.deps.frr.apply(text, this.applied?.text);
    this.applied = { intent: valid, text };
    return { version: valid.version, frr, loopbacks, ms: performance.now() - started };
  }

  /** The intent in force (validated), if any. */
  get intent(): ValidIntent | undefined {
    return this.applied?.intent;
  }

  /** Differences between the loopbacks as applied and as they are now (empty: correct). */
  loopbackProblems(): Promise<string[]> {
    return this.loopbacks.problems();
  }

  /** Keeps the loopbacks as applied from now on. */
  watchLoopbacks(): void {
    this.loopbacks.watch();
  }

  /**
   * Compares FRR's running configuration with the last applied one and
   * re-applies on any difference. Returns the difference found.
   */
  async checkFrrDrift(): Promise<ReloadDiff> {
    const applied = this.applied;
    if (!applied) return { add: [], remove: [] };
    const d = await this.deps.frr.diff(applied.text);
    if (isEmptyDiff(d)) return d;
    const what = [...d.remove.map((l) => `removed "${l.trim()}"`), ...d.add.map((l) => `restored "${l.trim()}"`)].join(', ');
    try {
      await this.deps.frr.apply(applied.text);
      this.frrRepairs++;
      this.emit('frr-drift-repaired', `FRR configuration changed by hand; ${what}`);
    } catch (err) {
      this.emit('frr-repair-failed', `FRR configuration changed by hand and could not be restored: ${(err as Error).message}`);
    }
    return d;
  }

  private emit(kind: string, detail: string): void {
    this.deps.onEvent?.({ kind, detail, time: new Date() });
  }

  close(): void {
    this.loopbacks.close();
  }
}
