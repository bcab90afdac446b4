// Validation of a FirewallPolicy before anything is compiled or applied.
// Every problem is a PolicyError naming the field ("rules[3].ports[0]"), so
// a bad policy is refused as a whole and the running ruleset stays.
import { PrefixError, parseCanonical, parseV4Prefix } from '../../../common/prefix.js';
import { ID, ID_HINT, IFNAME, IFNAME_HINT, POLICY_LIMITS, RULE_ID, RULE_ID_HINT } from '../../../common/names.js';
import type { PrefixList } from './prefix-set.js';
import { Action, Protocol, type PortRange } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import type { FirewallPolicy } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  constructor(readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`);
  }
}

const LIMITS = POLICY_LIMITS;

export type RuleAction = 'accept' | 'drop';
export type RuleProtocol = 'any' | 'tcp' | 'udp' | 'icmp' | 'icmpv6';

/** Prefixes split by family, canonical. */
export interface ByFamily {
  readonly v4: readonly string[];
  readonly v6: readonly string[];
}

/** An object's prefixes (network address and length), split by family: numbers for IPv4, bigints for IPv6. */
export interface ObjectPrefixes {
  readonly v4: PrefixList<number>;
  readonly v6: PrefixList<bigint>;
}

export type RuleSource =
  | { readonly kind: 'any' }
  | { readonly kind: 'object'; readonly id: string }
  | { readonly kind: 'prefixes'; readonly prefixes: ByFamily };

export interface ValidRule {
  readonly id: string;
  readonly action: RuleAction;
  readonly source: RuleSource;
  /** null: every address of the host. */
  readonly destinations: ByFamily | null;
  readonly protocol: RuleProtocol;
  /** Inclusive port ranges; empty: all ports. */
  readonly ports: readonly (readonly [number, number])[];
  readonly comment: string;
}

export interface ValidFailsafe {
  /** 0: bgpd does not listen. */
  readonly bgpPort: number;
  readonly uplinks: readonly string[];
  readonly bfd: boolean;
  readonly management: ByFamily;
}

export interface ValidPolicy {
  readonly version: string;
  readonly hostId: string;
  readonly hostAddresses: ByFamily;
  /** Object id -> prefix ranges by family; insertion order is the policy's order. */
  readonly objects: ReadonlyMap<string, ObjectPrefixes>;
  readonly rules: readonly ValidRule[];
  readonly failsafe: ValidFailsafe;
}

function parseAt(field: string, texts: readonly string[], i: number): ReturnType<typeof parseCanonical> {
  const t = texts[i] as string;
  try {
    return parseCanonical(t);
  } catch (err) {
    throw new PolicyError(`${field}[${i}]`, err instanceof PrefixError ? err.message : `"${t.slice(0, 80)}" is not a prefix`);
  }
}

function prefixesByFamily(field: string, texts: readonly string[]): ByFamily {
  const v4: string[] = [];
  const v6: string[] = [];
  for (let i = 0; i < texts.length; i++) {
    const { prefix, text } = parseAt(field, texts, i);
    (prefix.family === 4 ? v4 : v6).push(text);
  }
  return { v4: [...new Set(v4)], v6: [...new Set(v6)] };
}

/** Parses each prefix once (host bits cleared); duplicates are left to PrefixSet. Throws PolicyError. */
export function objectPrefixes(field: string, texts: readonly string[]): ObjectPrefixes {
  const out: ObjectPrefixes = { v4: { addrs: [], lens: [] }, v6: { addrs: [], lens: [] } };
  for (let i = 0; i < texts.length; i++) {
    const fast = parseV4Prefix(texts[i] as string);
    if (fast) {
      out.v4.addrs.push(fast[0]);
      out.v4.lens.push(fast[1]);
      continue;
    }
    const { prefix } = parseAt(field, texts, i);
    if (prefix.family === 4) {
      out.v4.addrs.push(Number(prefix.addr));
      out.v4.lens.push(prefix.len);
    } else {
      out.v6.addrs.push(prefix.addr);
      out.v6.lens.push(prefix.len);
    }
  }
  return out;
}

const ACTIONS: Partial<Record<Action, RuleAction>> = { [Action.ALLOW]: 'accept', [Action.DENY]: 'drop' };
const PROTOCOLS: Partial<Record<Protocol, RuleProtocol>> = {
  [Protocol.ANY]: 'any',
  [Protocol.TCP]: 'tcp',
  [Protocol.UDP]: 'udp',
  [Protocol.ICMP]: 'icmp',
  [Protocol.ICMPV6]: 'icmpv6',
};

function ports(field: string, list: readonly PortRange[], protocol: RuleProtocol): [number, number][] {
  if (list.length > 0 && protocol !== 'tcp' && protocol !== 'udp') {
    throw new PolicyError(field, `ports are only allowed with protocol tcp or udp, not ${protocol}`);
  }
  if (list.length > LIMITS.portsPerRule) throw new PolicyError(field, `at most ${LIMITS.portsPerRule} port ranges`);
  return list.map((r, i) => {
    const last = r.last === 0 ? r.first : r.last;
    if (r.first < 1 || r.first > 65535) throw new PolicyError(`${field}[${i}].first`, `port ${r.first} is outside 1-65535`);
    if (last > 65535) throw new PolicyError(`${field}[${i}].last`, `port ${last} is outside 1-65535`);
    if (last < r.first) throw new PolicyError(`${field}[${i}]`, `inverted range ${r.first}-${last}`);
    return [r.first, last];
  });
}

/**
 * Checks `policy` and `managementPrefixes` (from the agent's config) and
 * returns the normalised policy. Pure. Throws PolicyError naming the first
 * bad field.
 */
export function validatePolicy(policy: FirewallPolicy, managementPrefixes: readonly string[] = []): ValidPolicy {
  if (policy.rules.length > LIMITS.rules) throw new PolicyError('rules', `at most ${LIMITS.rules} rules`);
  if (policy.objects.length > LIMITS.objects) throw new PolicyError('objects', `at most ${LIMITS.objects} objects`);

  const objects = new Map<string, ObjectPrefixes>();
  let total = 0;
  policy.objects.forEach((o, i) => {
    const field = `objects[${i}]`;
    if (!ID.test(o.id)) throw new PolicyError(`${field}.id`, `"${o.id.slice(0, 80)}" is not a valid object id (${ID_HINT})`);
    if (objects.has(o.id)) throw new PolicyError(`${field}.id`, `duplicate object id "${o.id}"`);
    if (o.prefixes.length === 0) throw new PolicyError(`${field}.prefixes`, `object "${o.id}" has no prefixes`);
    total += o.prefixes.length;
    if (total > LIMITS.prefixes) throw new PolicyError(`${field}.prefixes`, `more than ${LIMITS.prefixes} prefixes in all objects`);
    objects.set(o.id, objectPrefixes(`${field}.prefixes`, o.prefixes));
  });

  const ids = new Set<string>();
  const rules = policy.rules.map((r, i): ValidRule => {
    const field = `rules[${i}]`;
    if (!RULE_ID.test(r.id)) throw new PolicyError(`${field}.id`, `"${r.id.slice(0, 80)}" is not a valid rule id (${RULE_ID_HINT})`);
    if (ids.has(r.id)) throw new PolicyError(`${field}.id`, `duplicate rule id "${r.id}"`);
    ids.add(r.id);
    const action = ACTIONS[r.action];
    if (!action) throw new PolicyError(`${field}.action`, 'must be ALLOW or DENY');
    const protocol = PROTOCOLS[r.protocol];
    if (!protocol) throw new PolicyError(`${field}.protocol`, 'must be ANY, TCP, UDP, ICMP or ICMPV6');
    if (r.comment.length > LIMITS.commentLength) {
      throw new PolicyError(`${field}.comment`, `${r.comment.length} characters, at most ${LIMITS.commentLength}`);
    }
    let source: RuleSource;
    const s = r.source?.kind;
    if (!s || s.case === undefined) throw new PolicyError(`${field}.source`, 'is required (any, object or prefixes)');
    if (s.case === 'any') {
      if (!s.value) throw new PolicyError(`${field}.source.any`, 'must be true (false would read as "no source", which is not a source)');
      source = { kind: 'any' };
    }
    else if (s.case === 'objectId') {
      if (!objects.has(s.value)) throw new PolicyError(`${field}.source.object_id`, `unknown object "${s.value.slice(0, 80)}"`);
      source = { kind: 'object', id: s.value };
    } else {
      if (s.value.prefixes.length === 0) throw new PolicyError(`${field}.source.prefixes`, 'must not be empty');
      source = { kind: 'prefixes', prefixes: prefixesByFamily(`${field}.source.prefixes`, s.value.prefixes) };
    }
    if (r.destinations.length > LIMITS.destinationsPerRule) {
      throw new PolicyError(`${field}.destinations`, `at most ${LIMITS.destinationsPerRule}`);
    }
    const destinations = r.destinations.length === 0 ? null : prefixesByFamily(`${field}.destinations`, r.destinations);
    return { id: r.id, action, source, destinations, protocol, ports: ports(`${field}.ports`, r.ports, protocol), comment: r.comment };
  });

  const fs = policy.failsafe;
  const uplinks = fs?.uplinks ?? [];
  uplinks.forEach((u, i) => {
    if (!IFNAME.test(u)) throw new PolicyError(`failsafe.uplinks[${i}]`, `"${u.slice(0, 80)}" is not an interface name (${IFNAME_HINT})`);
  });
  const bgpPort = fs?.bgpPort ?? 0;
  if (bgpPort > 65535) throw new PolicyError('failsafe.bgp_port', `port ${bgpPort} is outside 0-65535`);
  const mgmt = prefixesByFamily('failsafe.management_prefixes', fs?.managementPrefixes ?? []);
  const cfgMgmt = prefixesByFamily('managementPrefixes', managementPrefixes);

  return {
    version: policy.version,
    hostId: policy.hostId,
    hostAddresses: prefixesByFamily('host_addresses', policy.hostAddresses),
    objects,
    rules,
    failsafe: {
      bgpPort,
      uplinks: [...new Set(uplinks)],
      bfd: fs?.bfd ?? false,
      management: { v4: [...new Set([...cfgMgmt.v4, ...mgmt.v4])], v6: [...new Set([...cfgMgmt.v6, ...mgmt.v6])] },
    },
  };
}
