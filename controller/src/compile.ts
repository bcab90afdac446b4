// Per host, the two things its agent applies: the FirewallPolicy (the
// subnet's ACL with every object, subnet and host reference resolved, plus
// failsafes) and the RoutingIntent (loopbacks, uplinks, ASN, accepted
// prefixes, port, multipath). Each carries a content hash as its version, so
// equal content is the same version on every controller replica. Pure apart
// from reads through the store Reader.
import { createHash } from 'node:crypto';
import { create, toBinary } from '@bufbuild/protobuf';
import { notFound } from '../../proto/grpc/errors.js';
import {
  type FirewallPolicy, FirewallPolicySchema, type PolicyRule, PolicyRuleSchema, type ResolvedObject, ResolvedObjectSchema,
  type RoutingIntent, RoutingIntentSchema,
} from '../../proto/gen/hostnet/v1/compiled_pb.js';
import { BgpListen, type Host, Multipath, type Network } from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { Reader } from './store/store.js';

export interface CompileOptions {
  /** Operator management prefixes every host accepts. */
  readonly managementPrefixes?: readonly string[];
  /** The public pool, the address pool of public networks. */
  readonly publicPool?: string;
}

/**
 * Shared between the hosts of one compile pass (only valid while the store
 * does not change): resolved objects and their digest, per object id; and
 * whole firewall policies, per what they depend on (subnet, catalog, the
 * host's own uplinks, and the host itself only when a rule names hosts), so
 * that the hosts of a subnet share one policy object, one version, and one
 * entry in memory per version.
 */
export interface CompileCache {
  readonly objects: Map<string, { object: ResolvedObject; digest: string }>;
  readonly policies: Map<string, FirewallPolicy>;
}

export const compileCache = (): CompileCache => ({ objects: new Map(), policies: new Map() });

function resolveObject(store: Reader, id: string, cache: CompileCache | undefined): { object: ResolvedObject; digest: string } | undefined {
  const hit = cache?.objects.get(id);
  if (hit) return hit;
  const o = store.get('object', id)?.value;
  if (!o) return undefined;
  const object = create(ResolvedObjectSchema, { id: o.id, prefixes: [...o.prefixes].sort() });
  const entry = { object, digest: createHash('sha256').update(toBinary(ResolvedObjectSchema, object)).digest('hex') };
  cache?.objects.set(id, entry);
  return entry;
}

/** sha256 of the routing intent encoded without its version, as 16 hex digits. */
function routingVersion(m: RoutingIntent): string {
  return createHash('sha256').update(toBinary(RoutingIntentSchema, { ...m, version: '' })).digest('hex').slice(0, 16);
}

/**
 * The firewall policy's content hash: the policy without its objects, plus
 * each object's digest (computed once per pass and shared by every host).
 */
function firewallVersion(m: FirewallPolicy, digests: readonly string[]): string {
  const h = createHash('sha256').update(toBinary(FirewallPolicySchema, { ...m, version: '', objects: [] }));
  for (const d of digests) h.update(d);
  return h.digest('hex').slice(0, 16);
}

const LISTEN_PORT: Record<number, number> = { [BgpListen.PORT_179]: 179, [BgpListen.PORT_20179]: 20179, [BgpListen.NONE]: 0 };

function uplinksOf(host: Host, n: Network): string[] {
  // A host may name its own uplinks (first the private network's, then the public one's).
  return host.uplinks.length > 0 && n.name === 'private' ? [...host.uplinks] : [...n.uplinks];
}

/** The host with its subnet and catalog; throws NOT_FOUND for whichever is gone. */
function hostContext(store: Reader, hostId: string) {
  const host = store.get('host', hostId)?.value;
  if (!host) throw notFound(`host/${hostId}`);
  const subnet = store.get('subnet', host.subnetId)?.value;
  const catalog = store.get('catalog', host.catalog)?.value;
  if (!subnet) throw notFound(`subnet/${host.subnetId}`);
  if (!catalog) throw notFound(`catalog/${host.catalog}`);
  return { host, subnet, catalog };
}

/**
 * The host's FirewallPolicy. Throws NOT_FOUND when the host (or its subnet or
 * catalog) is gone.
 */
export function compileFirewall(store: Reader, hostId: string, options: CompileOptions = {}, cache?: CompileCache): FirewallPolicy {
  const { host, catalog } = hostContext(store, hostId);
  const acl = store.get('acl', host.subnetId)?.value;
  const hostSpecific = acl?.rules.some((r) => r.destination?.kind.case === 'hosts') ?? false;
  const key = `${host.subnetId}\0${host.catalog}\0${host.uplinks.join(',')}\0${hostSpecific ? hostId : ''}`;
  const shared = cache?.policies.get(key);
  if (shared) return shared;
  const objects = new Map<string, { object: ResolvedObject; digest: string }>();
  const own = [...host.addresses, ...host.publicAddresses];
  const rules: PolicyRule[] = [];
  for (const r of acl?.rules ?? []) {
    const dst = r.destination?.kind;
    if (dst?.case === 'hosts' && !dst.value.hostIds.includes(hostId)) continue;
    const src = r.source?.kind;
    let source: PolicyRule['source'];
    if (src?.case === 'objectId') {
      const o = resolveObject(store, src.value, cache);
      if (!o) continue;
      objects.set(src.value, o);
      source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'objectId', value: src.value } };
    } else if (src?.case === 'prefix') {
      source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'prefixes', value: { $typeName: 'hostnet.v1.PrefixList', prefixes: [src.value] } } };
    } else if (src?.case === 'subnetId') {
      const s = store.get('subnet', src.value)?.value;
      if (!s) continue;
      source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'prefixes', value: { $typeName: 'hostnet.v1.PrefixList', prefixes: [s.prefixV4, s.prefixV6].filter(Boolean) } } };
    } else {
      source = { $typeName: 'hostnet.v1.PolicySource', kind: { case: 'any', value: true } };
    }
    rules.push(create(PolicyRuleSchema, {
      id: r.id, action: r.action, source, protocol: r.protocol, ports: r.ports, comment: r.comment,
      destinations: dst?.case === 'hosts' ? own : [],
    }));
  }
  const uplinks = catalog.networks.flatMap((n) => uplinksOf(host, n));
  const sorted = [...objects].sort(([a], [b]) => a.localeCompare(b));
  // No host id and no host addresses in the policy (the agent needs neither: host-specific rules
  // carry their destinations): hosts whose rules are the same get the same policy, the same
  // version and the same encoded updates.
  const policy = create(FirewallPolicySchema, {
    objects: sorted.map(([, o]) => o.object),
    rules,
    failsafe: {
      bgpPort: LISTEN_PORT[catalog.bgpListen] ?? 179,
      uplinks,
      bfd: catalog.bfd,
      managementPrefixes: [...(options.managementPrefixes ?? [])],
    },
  });
  policy.version = firewallVersion(policy, sorted.map(([, o]) => o.digest));
  cache?.policies.set(key, policy);
  return policy;
}

/** The host's RoutingIntent. Throws NOT_FOUND when the host (or its subnet or catalog) is gone. */
export function compileRouting(store: Reader, hostId: string, options: CompileOptions = {}): RoutingIntent {
  const { host, subnet, catalog } = hostContext(store, hostId);
  const networks = catalog.networks.map((n) => ({
    name: n.name,
    loopback: n.loopback,
    addresses: n.name === 'public' ? [...host.publicAddresses] : [...host.addresses],
    uplinks: uplinksOf(host, n),
    acceptedPrefixes: [...n.acceptedPrefixes],
    routeTag: n.routeTag,
    addressPools: n.name === 'public' ? (options.publicPool ? [options.publicPool] : []) : [subnet.prefixV4, subnet.prefixV6].filter(Boolean),
  }));
  const intent = create(RoutingIntentSchema, {
    hostId,
    asn: host.asn,
    routerId: host.addresses.find((a) => !a.includes(':'))?.split('/')[0] ?? '',
    networks,
    bgpListen: catalog.bgpListen,
    multipath: catalog.multipath,
    bfd: catalog.bfd,
    primaryUplink: catalog.multipath === Multipath.ACTIVE_STANDBY ? (networks[0]?.uplinks[0] ?? '') : '',
  });
  intent.version = routingVersion(intent);
  return intent;
}
