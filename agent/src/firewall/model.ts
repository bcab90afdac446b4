// The firewall as the agent intends it: rules, failsafes and the object sets
// (PrefixSets: per prefix length, the exact elements the kernel holds). Built
// from a validated policy; object sets are changed in place by deltas. Pure
// data; no I/O.
import type { Family } from '../../../common/prefix.js';
import type { ByFamily, ObjectPrefixes, ValidFailsafe, ValidPolicy, ValidRule } from './policy.js';
import { objectPrefixes } from './policy.js';
import { type Addr, PrefixSet } from './prefix-set.js';

export const TABLE = 'hostnet';
export const FAMILY = 'inet';

export interface ObjectSets {
  readonly v4: PrefixSet;
  readonly v6: PrefixSet;
}

export interface FirewallModel {
  version: string;
  hostId: string;
  hostAddresses: ByFamily;
  rules: readonly ValidRule[];
  failsafe: ValidFailsafe;
  /** Object id -> its prefixes. */
  objects: Map<string, ObjectSets>;
  /** The management prefixes (config and policy). */
  management: ObjectSets;
}

/** One nft set: the addresses of one length of one object (or of the management prefixes). */
export interface NamedSet {
  readonly family: Family;
  readonly len: number;
  /** The live element set (the model's own). */
  readonly elements: ReadonlySet<Addr>;
  /** What it belongs to, for messages: "object web" or "failsafe management". */
  readonly origin: string;
}

/** nft set name of one object's prefixes of one family and length. Object ids never contain "_". */
export function objectSetName(id: string, family: Family, len: number): string {
  return `o${family}_${id.replace(/-/g, '_')}_${len}`;
}

export const managementSetName = (family: Family, len: number): string => `mgmt${family}_${len}`;

function setsOf(p: ObjectPrefixes): ObjectSets {
  return { v4: PrefixSet.from(4, p.v4), v6: PrefixSet.from(6, p.v6) };
}

/** A fresh model of a validated policy. */
export function buildModel(policy: ValidPolicy): FirewallModel {
  const objects = new Map<string, ObjectSets>();
  for (const [id, p] of policy.objects) objects.set(id, setsOf(p));
  const m = policy.failsafe.management;
  return {
    version: policy.version,
    hostId: policy.hostId,
    hostAddresses: policy.hostAddresses,
    rules: policy.rules,
    failsafe: policy.failsafe,
    objects,
    management: setsOf(objectPrefixes('management', [...m.v4, ...m.v6])),
  };
}

/**
 * Every set of the model by nft name, in a stable order. Length 0 (the whole
 * address family) needs no set: rules match it without an address test.
 */
export function namedSets(model: FirewallModel): Map<string, NamedSet> {
  const out = new Map<string, NamedSet>();
  const add = (sets: ObjectSets, name: (f: Family, len: number) => string, origin: string): void => {
    for (const [family, set] of [[4, sets.v4], [6, sets.v6]] as const) {
      for (const len of set.lengths()) {
        if (len > 0) out.set(name(family, len), { family, len, elements: set.addresses(len), origin });
      }
    }
  };
  add(model.management, managementSetName, 'failsafe management');
  for (const id of [...model.objects.keys()].sort()) {
    add(model.objects.get(id) as ObjectSets, (f, len) => objectSetName(id, f, len), `object ${id}`);
  }
  return out;
}
