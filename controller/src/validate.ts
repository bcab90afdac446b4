// Every admin input is checked before anything is stored: names and ids have
// a sane length and charset, prefixes parse and are canonical, ports are
// 1-65535 ranges, enums and oneofs hold a known, meaningful value, references
// exist and belong to the right tenant, and nothing exceeds what an agent
// accepts (the names and limits of common/names.ts, which the agent's own
// validators use). A refusal is a HostnetError naming the field
// (INVALID_ARGUMENT), the missing resource (NOT_FOUND) or the tenant boundary
// (PERMISSION_DENIED). Resources the caller cannot see are reported as absent,
// never by their owner, id or prefix. Pure apart from reads through the Reader.
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { type Prefix, PrefixError, contains, isCanonical, parseAddress, parsePrefix } from '../../common/prefix.js';
import {
  ADMIN_LIMITS, ASN_MAX, ASN_MIN, HOST_ID, HOST_ID_HINT, ID, ID_HINT, IFNAME, IFNAME_HINT, NETWORK_NAMES, POLICY_LIMITS, RULE_ID,
  RULE_ID_HINT, SUBNET_V4_LENGTH, SUBNET_V6_LENGTH,
} from '../../common/names.js';
import { HostnetError, invalidArgument, notFound, permissionDenied, stillReferenced } from '../../proto/grpc/errors.js';
import {
  type Acl, AclSchema, Action, BgpListen, type Host, HostSchema, Multipath, type NetworkCatalog, NetworkCatalogSchema,
  type NetworkObject, NetworkObjectSchema, Protocol, type Subnet, SubnetSchema, type Switch, SwitchSchema, type Tenant, TenantSchema,
} from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { Reader } from './store/store.js';

/** Who is asking: an operator (everything) or the admin of one tenant. */
export type Caller = { readonly role: 'operator' } | { readonly role: 'tenant-admin'; readonly tenant: string };

/** Whether `caller` may see what belongs to `tenant`. */
export const sees = (caller: Caller, tenant: string | undefined): boolean =>
  caller.role === 'operator' || (tenant !== undefined && caller.tenant === tenant);

// Printable, no control characters.
const TEXT = /^[^\p{Cc}]*$/u;

function id(field: string, value: string, pattern = ID, hint = ID_HINT): void {
  if (!pattern.test(value)) throw invalidArgument(field, `"${value.slice(0, 80)}" is not a valid id (${hint})`);
}

function text(field: string, value: string, max: number): void {
  if (value.length > max) throw invalidArgument(field, `${value.length} characters, at most ${max}`);
  if (!TEXT.test(value)) throw invalidArgument(field, 'contains control characters');
}

/** One of an enum's named values (never UNSPECIFIED, never a number the contract does not define). */
function known(field: string, value: number, allowed: Partial<Record<number, string>>): void {
  if (allowed[value] === undefined) throw invalidArgument(field, `${value} is not one of ${Object.values(allowed).join(', ')}`);
}

/** A canonical prefix of the given family; returns it parsed. */
export function prefix(field: string, value: string, family?: 4 | 6): Prefix {
  let p;
  try {
    p = parsePrefix(value);
  } catch (err) {
    throw invalidArgument(field, err instanceof PrefixError ? err.message : `"${value.slice(0, 80)}" is not a prefix`);
  }
  if (!value.includes('/') || !isCanonical(value)) throw invalidArgument(field, `"${value}" is not canonical (write it as the network address with its length)`);
  if (family && p.family !== family) throw invalidArgument(field, `"${value}" is not an IPv${family} prefix`);
  return p;
}

const overlaps = (a: Prefix, b: Prefix): boolean => contains(a, b) || contains(b, a);

function ownTenant(caller: Caller, tenant: string, field: string): void {
  if (!sees(caller, tenant)) throw permissionDenied(`tenant ${caller.role === 'tenant-admin' ? caller.tenant : ''} cannot act for tenant ${tenant}`, `tenant/${tenant}`, field);
}

/** A reference to `kind/key` that must belong to `tenant`: NOT_FOUND when absent or invisible to the caller. */
function sameTenant(caller: Caller, kind: string, key: string, owner: string | undefined, tenant: string, field: string): void {
  if (owner === undefined || !sees(caller, owner)) throw notFound(`${kind}/${key}`, field);
  if (owner !== tenant) {
    throw new HostnetError(Status.PERMISSION_DENIED, {
      reason: 'WRONG_TENANT', field, resource: `${kind}/${key}`,
      message: `${field}: ${kind} ${key} belongs to tenant ${owner}, not to ${tenant}`,
    });
  }
}

export function validateTenant(t: Tenant, caller: Caller): Tenant {
  if (caller.role !== 'operator') throw permissionDenied('only operators manage tenants', `tenant/${t.id}`);
  id('tenant.id', t.id);
  text('tenant.name', t.name, ADMIN_LIMITS.nameLength);
  return create(TenantSchema, { ...t, revision: 0n });
}

export function validateSubnet(s: Subnet, store: Reader, caller: Caller): Subnet {
  id('subnet.id', s.id);
  text('subnet.name', s.name, ADMIN_LIMITS.nameLength);
  if (!store.get('tenant', s.tenantId) || !sees(caller, s.tenantId)) {
    if (caller.role === 'tenant-admin') ownTenant(caller, s.tenantId, 'subnet.tenant_id');
    throw notFound(`tenant/${s.tenantId}`, 'subnet.tenant_id');
  }
  const p4 = prefix('subnet.prefix_v4', s.prefixV4, 4);
  if (p4.len < SUBNET_V4_LENGTH.min || p4.len > SUBNET_V4_LENGTH.max) {
    throw invalidArgument('subnet.prefix_v4', `length must be ${SUBNET_V4_LENGTH.min}-${SUBNET_V4_LENGTH.max}`);
  }
  const p6 = s.prefixV6 ? prefix('subnet.prefix_v6', s.prefixV6, 6) : undefined;
  if (p6 && (p6.len < SUBNET_V6_LENGTH.min || p6.len > SUBNET_V6_LENGTH.max)) {
    throw invalidArgument('subnet.prefix_v6', `length must be ${SUBNET_V6_LENGTH.min}-${SUBNET_V6_LENGTH.max}`);
  }
  for (const o of store.list('subnet')) {
    if (o.key === s.id) continue;
    const [field, mine, theirs] = overlaps(p4, parsePrefix(o.value.prefixV4))
      ? ['subnet.prefix_v4', s.prefixV4, o.value.prefixV4]
      : p6 && o.value.prefixV6 && overlaps(p6, parsePrefix(o.value.prefixV6)) ? ['subnet.prefix_v6', s.prefixV6, o.value.prefixV6] : [];
    if (!field) continue;
    // Another tenant's subnet is not named: its id and prefix are that tenant's business.
    throw invalidArgument(field, sees(caller, o.value.tenantId)
      ? `${mine} overlaps subnet ${o.key} (${theirs})`
      : `${mine} overlaps an address range that is already taken`);
  }
  return create(SubnetSchema, { ...s, revision: 0n });
}

const LISTEN: Partial<Record<number, string>> = { [BgpListen.PORT_179]: 'PORT_179', [BgpListen.PORT_20179]: 'PORT_20179', [BgpListen.NONE]: 'NONE' };
const MULTIPATH: Partial<Record<number, string>> = { [Multipath.ECMP]: 'ECMP', [Multipath.ACTIVE_STANDBY]: 'ACTIVE_STANDBY' };
const ACTION: Partial<Record<number, string>> = { [Action.ALLOW]: 'ALLOW', [Action.DENY]: 'DENY' };
const PROTOCOL: Partial<Record<number, string>> = {
  [Protocol.ANY]: 'ANY', [Protocol.TCP]: 'TCP', [Protocol.UDP]: 'UDP', [Protocol.ICMP]: 'ICMP', [Protocol.ICMPV6]: 'ICMPV6',
};

export function validateCatalog(c: NetworkCatalog, caller: Caller): NetworkCatalog {
  if (caller.role !== 'operator') throw permissionDenied('only operators manage network catalogs', `catalog/${c.name}`);
  id('network_catalog.name', c.name);
  if (c.networks.length === 0) throw invalidArgument('network_catalog.networks', 'at least one network');
  const names = new Set<string>();
  const tags = new Set<number>();
  const interfaces = new Set<string>();
  c.networks.forEach((n, i) => {
    const f = `network_catalog.networks[${i}]`;
    if (!(NETWORK_NAMES as readonly string[]).includes(n.name)) throw invalidArgument(`${f}.name`, `must be ${NETWORK_NAMES.map((x) => `"${x}"`).join(' or ')}`);
    if (names.has(n.name)) throw invalidArgument(`${f}.name`, `network ${n.name} twice`);
    names.add(n.name);
    if (!IFNAME.test(n.loopback)) throw invalidArgument(`${f}.loopback`, `"${n.loopback.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
    if (interfaces.has(n.loopback)) throw invalidArgument(`${f}.loopback`, `${n.loopback} is used twice in this catalog`);
    interfaces.add(n.loopback);
    if (n.uplinks.length === 0) throw invalidArgument(`${f}.uplinks`, 'at least one uplink');
    n.uplinks.forEach((u, j) => {
      if (!IFNAME.test(u)) throw invalidArgument(`${f}.uplinks[${j}]`, `"${u.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
      if (interfaces.has(u)) throw invalidArgument(`${f}.uplinks[${j}]`, `${u} is used twice in this catalog`);
      interfaces.add(u);
    });
    if (n.acceptedPrefixes.length === 0) throw invalidArgument(`${f}.accepted_prefixes`, 'at least one prefix');
    n.acceptedPrefixes.forEach((p, j) => prefix(`${f}.accepted_prefixes[${j}]`, p));
    if (n.routeTag < 1) throw invalidArgument(`${f}.route_tag`, 'must be 1 or more');
    if (tags.has(n.routeTag)) throw invalidArgument(`${f}.route_tag`, `tag ${n.routeTag} is used by another network`);
    tags.add(n.routeTag);
  });
  if (!names.has('private')) throw invalidArgument('network_catalog.networks', 'a private network is required');
  known('network_catalog.bgp_listen', c.bgpListen, LISTEN);
  known('network_catalog.multipath', c.multipath, MULTIPATH);
  return create(NetworkCatalogSchema, { ...c, revision: 0n });
}

export interface HostRules {
  /** The public pool (canonical IPv4 prefix); public addresses must lie in it when set. */
  readonly publicPool?: string | undefined;
}

/** Host /32s and /128s of one list: canonical, no duplicates, at most one per family; returns them parsed. */
export function hostAddresses(field: string, list: readonly string[]): Prefix[] {
  const seen = new Set<string>();
  const families = new Set<number>();
  return list.map((a, i) => {
    const p = prefix(`${field}[${i}]`, a);
    if (p.len !== (p.family === 4 ? 32 : 128)) throw invalidArgument(`${field}[${i}]`, `${a} is not a host address (/32 or /128)`);
    if (seen.has(a)) throw invalidArgument(`${field}[${i}]`, `${a} is listed twice`);
    if (families.has(p.family)) throw invalidArgument(`${field}[${i}]`, `a host has one IPv${p.family} address here, ${a} would be a second`);
    seen.add(a);
    families.add(p.family);
    return p;
  });
}

/** A host as given; addresses are checked here (IPAM fills in missing ones before). */
export function validateHost(h: Host, store: Reader, caller: Caller, rules: HostRules = {}): Host {
  if (caller.role !== 'operator') throw permissionDenied('only operators (and provisioning) manage hosts', `host/${h.id}`);
  id('host.id', h.id, HOST_ID, HOST_ID_HINT);
  if (store.get('switch', h.id)) throw invalidArgument('host.id', `${h.id} is a switch's name`);
  if (store.get('released', h.id)) {
    throw new HostnetError(Status.FAILED_PRECONDITION, {
      reason: 'RELEASING', field: 'host.id', resource: `host/${h.id}`,
      message: `host.id: host ${h.id} is being released: its switches have not all applied the release yet; retry when they have`,
    });
  }
  const subnet = store.get('subnet', h.subnetId);
  if (!subnet) throw notFound(`subnet/${h.subnetId}`, 'host.subnet_id');
  const catalog = store.get('catalog', h.catalog);
  if (!catalog) throw notFound(`catalog/${h.catalog}`, 'host.catalog');
  if (!Number.isInteger(h.asn) || h.asn < ASN_MIN || h.asn > ASN_MAX) throw invalidArgument('host.asn', `${h.asn} is not an ASN (${ASN_MIN}-${ASN_MAX})`);
  const { prefixV4, prefixV6 } = subnet.value;
  const addresses = hostAddresses('host.addresses', h.addresses);
  if (!addresses.some((p) => p.family === 4)) throw invalidArgument('host.addresses', 'a host needs an IPv4 /32 (its router id)');
  addresses.forEach((p, i) => {
    const field = `host.addresses[${i}]`;
    if (p.family === 4 && !contains(parsePrefix(prefixV4), p)) throw invalidArgument(field, `${h.addresses[i]} is outside subnet ${subnet.key} (${prefixV4})`);
    if (p.family === 6 && !prefixV6) throw invalidArgument(field, `${h.addresses[i]}: subnet ${subnet.key} has no IPv6 prefix`);
    if (p.family === 6 && !contains(parsePrefix(prefixV6), p)) throw invalidArgument(field, `${h.addresses[i]} is outside subnet ${subnet.key} (${prefixV6})`);
  });
  hostAddresses('host.public_addresses', h.publicAddresses).forEach((p, i) => {
    const field = `host.public_addresses[${i}]`;
    if (p.family !== 4) throw invalidArgument(field, `${h.publicAddresses[i]}: public addresses are IPv4 /32s`);
    if (rules.publicPool && !contains(parsePrefix(rules.publicPool), p)) throw invalidArgument(field, `${h.publicAddresses[i]} is outside the public pool (${rules.publicPool})`);
  });
  const pub = catalog.value.networks.find((n) => n.name === 'public');
  if (pub && h.publicAddresses.length === 0) throw invalidArgument('host.public_addresses', `catalog ${h.catalog} has a public network: the host needs a public address`);
  const others = new Set(catalog.value.networks.flatMap((n) => (n.name === 'private' ? [n.loopback] : [n.loopback, ...n.uplinks])));
  const seen = new Set<string>();
  h.uplinks.forEach((u, i) => {
    const field = `host.uplinks[${i}]`;
    if (!IFNAME.test(u)) throw invalidArgument(field, `"${u.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
    if (seen.has(u)) throw invalidArgument(field, `${u} is listed twice`);
    if (others.has(u)) throw invalidArgument(field, `${u} is a loopback or uplink of another network in catalog ${h.catalog}`);
    seen.add(u);
  });
  switchPorts(h, catalog.value, store);
  return create(HostSchema, { ...h, revision: 0n });
}

/** The uplink interfaces of a host: its catalog's, the private network's replaced by `host.uplinks` when given. */
export function uplinksOf(h: Host, catalog: NetworkCatalog): string[] {
  return catalog.networks.flatMap((n) => (n.name === 'private' && h.uplinks.length > 0 ? h.uplinks : n.uplinks));
}

/**
 * Where the host is cabled: each entry an uplink of the host, a server port
 * of an existing switch, no port another host's, no two uplinks on one
 * switch (a switch lost would take both paths).
 */
function switchPorts(h: Host, catalog: NetworkCatalog, store: Reader): void {
  if (h.switchPorts.length === 0) return;
  const uplinks = uplinksOf(h, catalog);
  const used = new Set<string>();
  const switches = new Map<string, number>();
  h.switchPorts.forEach((sp, i) => {
    const f = `host.switch_ports[${i}]`;
    if (!uplinks.includes(sp.uplink)) throw invalidArgument(`${f}.uplink`, `"${sp.uplink.slice(0, 40)}" is not an uplink of this host (${uplinks.join(', ')})`);
    if (used.has(sp.uplink)) throw invalidArgument(`${f}.uplink`, `${sp.uplink} is cabled twice`);
    used.add(sp.uplink);
    const sw = store.get('switch', sp.switchName);
    if (!sw) throw notFound(`switch/${sp.switchName}`, `${f}.switch_name`);
    const other = switches.get(sp.switchName);
    if (other !== undefined) throw invalidArgument(`${f}.switch_name`, `switch ${sp.switchName} already has uplink ${h.switchPorts[other]?.uplink ?? ''}: each uplink goes to another switch`);
    switches.set(sp.switchName, i);
    if (!IFNAME.test(sp.port)) throw invalidArgument(`${f}.port`, `"${sp.port.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
    if (!sw.value.ports.includes(sp.port)) throw invalidArgument(`${f}.port`, `${sp.port} is not a server port of switch ${sp.switchName}`);
    const holder = hostOnPort(store, sp.switchName, sp.port);
    if (holder !== undefined && holder !== h.id) throw invalidArgument(`${f}.port`, `${sp.switchName} ${sp.port} is host ${holder}'s port`);
  });
}

/** The host cabled to a switch's port, if any. */
export function hostOnPort(store: Reader, switchName: string, port: string): string | undefined {
  return store.list('host').find((x) => x.value.switchPorts.some((p) => p.switchName === switchName && p.port === port))?.key;
}

export function validateSwitch(sw: Switch, store: Reader, caller: Caller): Switch {
  if (caller.role !== 'operator') throw permissionDenied('only operators manage switches', `switch/${sw.name}`);
  id('switch.name', sw.name);
  // A switch's agent is known by its name as a host's by its id: one certificate namespace.
  if (store.get('host', sw.name)) throw invalidArgument('switch.name', `${sw.name} is a host's id`);
  if (!Number.isInteger(sw.asn) || sw.asn < ASN_MIN || sw.asn > ASN_MAX) throw invalidArgument('switch.asn', `${sw.asn} is not an ASN (${ASN_MIN}-${ASN_MAX})`);
  let rid;
  try {
    rid = parseAddress(sw.routerId);
  } catch {
    throw invalidArgument('switch.router_id', `"${sw.routerId.slice(0, 40)}" is not an IPv4 address`);
  }
  if (rid.family !== 4) throw invalidArgument('switch.router_id', `"${sw.routerId}" is not an IPv4 address`);
  if (sw.ports.length > ADMIN_LIMITS.portsPerSwitch) throw invalidArgument('switch.ports', `at most ${ADMIN_LIMITS.portsPerSwitch}`);
  const names = new Set<string>();
  const ifnames = (field: string, list: readonly string[]): void => list.forEach((p, i) => {
    if (!IFNAME.test(p)) throw invalidArgument(`${field}[${i}]`, `"${p.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
    if (names.has(p)) throw invalidArgument(`${field}[${i}]`, `${p} is listed twice`);
    names.add(p);
  });
  ifnames('switch.ports', sw.ports);
  ifnames('switch.fabric_ports', sw.fabricPorts);
  if (!Number.isInteger(sw.poolVlan) || sw.poolVlan < 1 || sw.poolVlan > 4094) throw invalidArgument('switch.pool_vlan', `${sw.poolVlan} is not a VLAN id (1-4094)`);
  if (sw.maxPrefixes > ADMIN_LIMITS.maxPrefixesPerPort) throw invalidArgument('switch.max_prefixes', `at most ${ADMIN_LIMITS.maxPrefixesPerPort}`);
  return create(SwitchSchema, { ...sw, revision: 0n });
}

export function validateObject(o: NetworkObject, store: Reader, caller: Caller): NetworkObject {
  id('network_object.id', o.id);
  if (!store.get('tenant', o.tenantId) || !sees(caller, o.tenantId)) {
    if (caller.role === 'tenant-admin') ownTenant(caller, o.tenantId, 'network_object.tenant_id');
    throw notFound(`tenant/${o.tenantId}`, 'network_object.tenant_id');
  }
  text('network_object.description', o.description, ADMIN_LIMITS.descriptionLength);
  if (o.prefixes.length === 0) throw invalidArgument('network_object.prefixes', 'an object needs at least one prefix');
  if (o.prefixes.length > ADMIN_LIMITS.prefixesPerObject) throw invalidArgument('network_object.prefixes', `at most ${ADMIN_LIMITS.prefixesPerObject}`);
  const seen = new Set<string>();
  o.prefixes.forEach((p, i) => {
    prefix(`network_object.prefixes[${i}]`, p);
    if (seen.has(p)) throw invalidArgument(`network_object.prefixes[${i}]`, `${p} is listed twice`);
    seen.add(p);
  });
  return create(NetworkObjectSchema, { ...o, revision: 0n });
}

export function validateAcl(acl: Acl, store: Reader, caller: Caller): Acl {
  const subnet = store.get('subnet', acl.subnetId);
  if (!subnet || !sees(caller, subnet.value.tenantId)) {
    if (subnet && caller.role === 'tenant-admin') ownTenant(caller, subnet.value.tenantId, 'acl.subnet_id');
    throw notFound(`subnet/${acl.subnetId}`, 'acl.subnet_id');
  }
  const tenant = subnet.value.tenantId;
  if (acl.rules.length > ADMIN_LIMITS.rulesPerAcl) throw invalidArgument('acl.rules', `at most ${ADMIN_LIMITS.rulesPerAcl} rules`);
  const ids = new Set<string>();
  const objects = new Map<string, number>();
  acl.rules.forEach((r, i) => {
    const f = `acl.rules[${i}]`;
    id(`${f}.id`, r.id, RULE_ID, RULE_ID_HINT);
    if (ids.has(r.id)) throw invalidArgument(`${f}.id`, `duplicate rule id "${r.id}"`);
    ids.add(r.id);
    known(`${f}.action`, r.action, ACTION);
    known(`${f}.protocol`, r.protocol, PROTOCOL);
    text(`${f}.comment`, r.comment, ADMIN_LIMITS.commentLength);
    const src = r.source?.kind;
    if (!src || src.case === undefined) throw invalidArgument(`${f}.source`, 'is required: exactly one of any, object_id, prefix or subnet_id');
    if (src.case === 'any') {
      if (!src.value) throw invalidArgument(`${f}.source.any`, 'must be true (to match any source); use another source kind to narrow it');
    } else if (src.case === 'objectId') {
      const o = store.get('object', src.value);
      sameTenant(caller, 'object', src.value, o?.value.tenantId, tenant, `${f}.source.object_id`);
      objects.set(src.value, o?.value.prefixes.length ?? 0);
    } else if (src.case === 'prefix') {
      prefix(`${f}.source.prefix`, src.value);
    } else {
      const s = store.get('subnet', src.value);
      sameTenant(caller, 'subnet', src.value, s?.value.tenantId, tenant, `${f}.source.subnet_id`);
    }
    const dst = r.destination?.kind;
    if (!dst || dst.case === undefined) throw invalidArgument(`${f}.destination`, 'is required: subnet (every host) or hosts (a list)');
    if (dst.case === 'subnet') {
      if (!dst.value) throw invalidArgument(`${f}.destination.subnet`, 'must be true (every host of the subnet); list hosts to narrow it');
    } else {
      const hostIds = dst.value.hostIds;
      if (hostIds.length === 0) throw invalidArgument(`${f}.destination.hosts`, 'list at least one host, or use subnet');
      if (hostIds.length > ADMIN_LIMITS.hostsPerRule) throw invalidArgument(`${f}.destination.hosts`, `at most ${ADMIN_LIMITS.hostsPerRule}`);
      hostIds.forEach((h, j) => {
        const field = `${f}.destination.hosts.host_ids[${j}]`;
        if (hostIds.indexOf(h) !== j) throw invalidArgument(field, `host ${h} is listed twice`);
        const host = store.get('host', h);
        const owner = host && store.get('subnet', host.value.subnetId)?.value.tenantId;
        if (!host || !sees(caller, owner)) throw notFound(`host/${h}`, field);
        if (host.value.subnetId !== acl.subnetId) throw invalidArgument(field, `host ${h} is not in subnet ${acl.subnetId}`);
      });
    }
    const ported = r.protocol === Protocol.TCP || r.protocol === Protocol.UDP;
    if (r.ports.length > 0 && !ported) throw invalidArgument(`${f}.ports`, 'ports are only allowed with TCP or UDP');
    if (r.ports.length > ADMIN_LIMITS.portsPerRule) throw invalidArgument(`${f}.ports`, `at most ${ADMIN_LIMITS.portsPerRule} ranges`);
    r.ports.forEach((p, j) => {
      const last = p.last === 0 ? p.first : p.last;
      if (p.first < 1 || p.first > 65535) throw invalidArgument(`${f}.ports[${j}].first`, `port ${p.first} is outside 1-65535`);
      if (last > 65535) throw invalidArgument(`${f}.ports[${j}].last`, `port ${last} is outside 1-65535`);
      if (last < p.first) throw invalidArgument(`${f}.ports[${j}]`, `inverted range ${p.first}-${last}`);
    });
  });
  // What the compiled policy will hold: every agent of the subnet must be able to take it.
  if (objects.size > POLICY_LIMITS.objects) throw invalidArgument('acl.rules', `the rules use ${objects.size} objects, an agent takes at most ${POLICY_LIMITS.objects}`);
  const total = [...objects.values()].reduce((a, b) => a + b, 0);
  if (total > POLICY_LIMITS.prefixes) throw invalidArgument('acl.rules', `the objects the rules use hold ${total} prefixes, an agent takes at most ${POLICY_LIMITS.prefixes}`);
  return create(AclSchema, { ...acl, revision: 0n });
}

/** What still refers to a resource; a delete is refused while this is non-empty. */
export function referencesTo(store: Reader, kind: 'tenant' | 'subnet' | 'catalog' | 'object' | 'host' | 'switch', key: string): string[] {
  const refs: string[] = [];
  if (kind === 'switch') for (const h of store.list('host')) if (h.value.switchPorts.some((p) => p.switchName === key)) refs.push(`host/${h.key}`);
  if (kind === 'tenant') {
    for (const s of store.list('subnet')) if (s.value.tenantId === key) refs.push(`subnet/${s.key}`);
    for (const o of store.list('object')) if (o.value.tenantId === key) refs.push(`object/${o.key}`);
  }
  if (kind === 'subnet') {
    for (const h of store.list('host')) if (h.value.subnetId === key) refs.push(`host/${h.key}`);
    if (store.get('acl', key)) refs.push(`acl/${key}`);
  }
  if (kind === 'catalog') for (const h of store.list('host')) if (h.value.catalog === key) refs.push(`host/${h.key}`);
  for (const a of store.list('acl')) {
    for (const r of a.value.rules) {
      const src = r.source?.kind;
      const dst = r.destination?.kind;
      const hit = (kind === 'object' && src?.case === 'objectId' && src.value === key)
        || (kind === 'subnet' && src?.case === 'subnetId' && src.value === key && a.key !== key)
        || (kind === 'host' && dst?.case === 'hosts' && dst.value.hostIds.includes(key));
      if (hit) refs.push(`acl/${a.key} rule ${r.id}`);
    }
  }
  return refs;
}

/** Throws FAILED_PRECONDITION naming what still refers to `kind/key`. */
export function refuseIfReferenced(store: Reader, kind: 'tenant' | 'subnet' | 'catalog' | 'object' | 'host' | 'switch', key: string): void {
  const refs = referencesTo(store, kind, key);
  if (refs.length > 0) throw stillReferenced(`${kind}/${key}`, refs);
}
