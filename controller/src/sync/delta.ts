// What changed between two versions of a host's FirewallPolicy, as a
// FirewallDelta: object element changes alone when that is all that changed
// (the common case: a prefix added to an object), the full rule list,
// failsafes or addresses only when those changed. Pure.
import { create, equals } from '@bufbuild/protobuf';
import { type FirewallDelta, FirewallDeltaSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { FailsafeSchema, type FirewallPolicy, PolicyRuleSchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

const sameList = <T>(a: readonly T[], b: readonly T[], eq: (x: T, y: T) => boolean): boolean =>
  a.length === b.length && a.every((x, i) => eq(x, b[i] as T));

/** The delta from `base` to `next` (both of one host). */
export function firewallDelta(base: FirewallPolicy, next: FirewallPolicy): FirewallDelta {
  const d = create(FirewallDeltaSchema, { baseVersion: base.version, version: next.version });
  const before = new Map(base.objects.map((o) => [o.id, new Set(o.prefixes)]));
  for (const o of next.objects) {
    const had = before.get(o.id);
    if (!had) {
      d.addedObjects.push(o);
      continue;
    }
    const now = new Set(o.prefixes);
    const added = o.prefixes.filter((p) => !had.has(p));
    const removed = [...had].filter((p) => !now.has(p));
    if (added.length > 0 || removed.length > 0) d.objectChanges.push({ $typeName: 'hostnet.v1.ObjectChange', id: o.id, added, removed });
  }
  const ids = new Set(next.objects.map((o) => o.id));
  d.removedObjects = base.objects.filter((o) => !ids.has(o.id)).map((o) => o.id);
  if (!sameList(base.rules, next.rules, (a, b) => equals(PolicyRuleSchema, a, b))) {
    d.rules = { $typeName: 'hostnet.v1.RuleList', rules: next.rules };
  }
  if (!equals(FailsafeSchema, base.failsafe ?? create(FailsafeSchema), next.failsafe ?? create(FailsafeSchema))) d.failsafe = next.failsafe;
  if (!sameList(base.hostAddresses, next.hostAddresses, (a, b) => a === b)) d.hostAddresses = next.hostAddresses;
  return d;
}
