// What the controller sends, applied to this host: the firewall first (the
// host is protected before anything else changes), then the loopbacks and
// FRR. A routing intent is validated before the firewall is touched, so a
// bad intent refuses the whole snapshot with nothing changed. The state in
// force is kept as a Snapshot, which the sync client saves for the next
// start.
import { create } from '@bufbuild/protobuf';
import { type Delta, type Snapshot, SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { FirewallPolicy, RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type Firewall, mergeDelta } from '../firewall/firewall.js';
import { PolicyError } from '../firewall/policy.js';
import type { Routing } from '../routing/routing.js';
import type { Applier } from '../sync/client.js';

export interface HostApplierHooks {
  /** After each part is applied: which part, its version, how long it took. */
  readonly onApplied?: (part: 'firewall' | 'routing', version: string, ms: number) => void;
}

export class HostApplier implements Applier {
  private policy: FirewallPolicy | undefined;
  private intent: RoutingIntent | undefined;
  /** Why the routing intent in `intent` is not in force, while it is not. */
  routingError: string | undefined;

  constructor(private readonly firewall: Firewall, private readonly routing: Routing, private readonly hooks: HostApplierHooks = {}) {}

  versions(): { firewall: string; routing: string } {
    return { firewall: this.firewall.version ?? '', routing: this.routing.version ?? '' };
  }

  async applySnapshot(s: Snapshot): Promise<void> {
    if (!s.firewall) throw new PolicyError('snapshot.firewall', 'is required: the agent never runs without a firewall policy');
    // Validation only: a bad intent refuses the snapshot before the firewall changes.
    if (s.routing) await this.routing.validate(s.routing);
    const fw = await this.firewall.applyPolicy(s.firewall);
    this.policy = s.firewall;
    this.hooks.onApplied?.('firewall', fw.version, fw.ms);
    if (s.routing) await this.applyRouting(s.routing);
  }

  async applyDelta(d: Delta): Promise<void> {
    if (d.routing) await this.routing.validate(d.routing);
    if (d.firewall) {
      if (!this.policy) throw new PolicyError('delta.firewall.base_version', 'no policy applied yet; a snapshot is needed');
      const fw = await this.firewall.applyDelta(d.firewall);
      this.policy = mergeDelta(this.policy, d.firewall);
      this.hooks.onApplied?.('firewall', fw.version, fw.ms);
    }
    if (d.routing) await this.applyRouting(d.routing);
  }

  private async applyRouting(intent: RoutingIntent): Promise<void> {
    this.intent = intent;
    try {
      const r = await this.routing.apply(intent);
      this.routingError = undefined;
      this.hooks.onApplied?.('routing', r.version, r.ms);
    } catch (err) {
      this.routingError = (err as Error).message;
      throw err;
    }
  }

  /** Re-applies an intent whose apply failed (FRR was not up yet, say). Returns true when it is now in force. */
  async retryRouting(): Promise<boolean> {
    if (this.routingError === undefined || !this.intent) return true;
    try {
      await this.applyRouting(this.intent);
      return true;
    } catch {
      return false;
    }
  }

  current(): Snapshot {
    return create(SnapshotSchema, {
      ...(this.policy ? { firewall: this.policy } : {}),
      ...(this.intent ? { routing: this.intent } : {}),
    });
  }
}
