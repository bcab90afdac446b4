// The firewall as the agent intends it: rules, failsafes and the object sets
// (as IntervalSets, the exact elements the kernel holds). Built from a
// validated policy; changed in place by deltas. Pure data; no I/O.
import { type Family } from '../../../common/prefix.js';
import { IntervalSet } from './intervals.js';
import type { ByFamily, ValidFailsafe, ValidPolicy, ValidRule } from './policy.js';

export const TABLE = 'hostnet';
export const FAMILY = 'inet';

export interface ObjectSets {
  readonly v4: IntervalSet;
  readonly v6: IntervalSet;
}

export interface FirewallModel {
  version: string;
  hostId: string;
  hostAddresses: ByFamily;
  rules: readonly ValidRule[];
  failsafe: ValidFailsafe;
  /** Object id -> its two sets. */
  objects: Map<string, ObjectSets>;
  /** The management sets (always present, maybe empty). */
  management: ObjectSets;
}

/** nft set name of an object's set for one family. Object ids never contain "_". */
export function objectSetName(id: string, family: Family): string {
  return `o${family}_${id.replace(/-/g, '_')}`;
}

export const MANAGEMENT_SET: Readonly<Record<Family, string>> = { 4: 'mgmt4', 6: 'mgmt6' };

export function setsOf(prefixes: ByFamily): ObjectSets {
  return { v4: IntervalSet.fromPrefixes(4, prefixes.v4), v6: IntervalSet.fromPrefixes(6, prefixes.v6) };
}

/** A fresh model of a validated policy. */
export function buildModel(policy: ValidPolicy): FirewallModel {
  const objects = new Map<string, ObjectSets>();
  for (const [id, prefixes] of policy.objects) objects.set(id, setsOf(prefixes));
  return {
    version: policy.version,
    hostId: policy.hostId,
    hostAddresses: policy.hostAddresses,
    rules: policy.rules,
    failsafe: policy.failsafe,
    objects,
    management: setsOf(policy.failsafe.management),
  };
}

/** Every set of the model by nft name, in a stable order. */
export function namedSets(model: FirewallModel): Map<string, IntervalSet> {
  const out = new Map<string, IntervalSet>();
  out.set(MANAGEMENT_SET[4], model.management.v4);
  out.set(MANAGEMENT_SET[6], model.management.v6);
  for (const id of [...model.objects.keys()].sort()) {
    const sets = model.objects.get(id) as ObjectSets;
    out.set(objectSetName(id, 4), sets.v4);
    out.set(objectSetName(id, 6), sets.v6);
  }
  return out;
}

/** Which object a set name belongs to ("" for the management sets). */
export function objectOfSet(model: FirewallModel, name: string): string {
  for (const id of model.objects.keys()) {
    if (name === objectSetName(id, 4) || name === objectSetName(id, 6)) return id;
  }
  return '';
}
