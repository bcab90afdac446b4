// Every admin input is checked before anything is stored: names and ids have
// a sane length and charset, prefixes parse and are canonical, ports are
// 1-65535 ranges, references exist and belong to the right tenant. A refusal
// is a HostnetError naming the field (INVALID_ARGUMENT), the missing resource
// (NOT_FOUND) or the tenant boundary (PERMISSION_DENIED). Pure apart from
// reads through the store Reader.
import { create } from '@bufbuild/protobuf';
import { PrefixError, contains, isCanonical, parsePrefix } from '../../common/prefix.js';
import { invalidArgument, notFound, permissionDenied, stillReferenced } from '../../proto/grpc/errors.js';
import {
  type Acl, AclSchema, Action, BgpListen, type Host, HostSchema, Multipath, type NetworkCatalog, NetworkCatalogSchema,
  type NetworkObject, NetworkObjectSchema, Protocol, type Subnet, SubnetSchema, type Tenant, TenantSchema,
} from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { Reader } from './store/store.js';

/** Who is asking: an operator (everything) or the admin of one tenant. */
export type Caller = { readonly role: 'operator' } | { readonly role: 'tenant-admin'; readonly tenant: string };

export const LIMITS = {
  nameLength: 128,
  descriptionLength: 1024,
  commentLength: 256,
  prefixesPerObject: 100_000,
  rulesPerAcl: 10_000,
  portsPerRule: 64,
  hostsPerRule: 1_000,
} as const;

const ID = /^[a-z][a-z0-9-]{0,62}$/;
const HOST_ID = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
const RULE_ID = /^[A-Za-z0-9]([A-Za-z0-9_.:-]{0,62}[A-Za-z0-9])?$/;
const IFNAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$/;
// Printable, no control characters.
const TEXT = /^[^\p{Cc}]*$/u;

function id(field: string, value: string, pattern = ID): void {
  if (!pattern.test(value)) {
    throw invalidArgument(field, `"${value.slice(0, 80)}" is not a valid id (lower-case letters, digits and "-", at most 63)`);
  }
}

function text(field: string, value: string, max: number): void {
  if (value.length > max) throw invalidArgument(field, `${value.length} characters, at most ${max}`);
  if (!TEXT.test(value)) throw invalidArgument(field, 'contains control characters');
}

/** A canonical prefix of the given family; returns it parsed. */
function prefix(field: string, value: string, family?: 4 | 6): ReturnType<typeof parsePrefix> {
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

function ownTenant(caller: Caller, tenant: string, field: string): void {
  if (caller.role === 'tenant-admin' && caller.tenant !== tenant) {
    throw permissionDenied(`tenant ${caller.tenant} cannot act for tenant ${tenant}`, `tenant/${tenant}`, field);
  }
}

export function validateTenant(t: Tenant, caller: Caller): Tenant {
  if (caller.role !== 'operator') throw permissionDenied('only operators manage tenants', `tenant/${t.id}`);
  id('tenant.id', t.id);
  text('tenant.name', t.name, LIMITS.nameLength);
  return create(TenantSchema, t);
}

export function validateSubnet(s: Subnet, store: Reader, caller: Caller): Subnet {
  id('subnet.id', s.id);
  text('subnet.name', s.name, LIMITS.nameLength);
  if (!store.get('tenant', s.tenantId)) throw notFound(`tenant/${s.tenantId}`, 'subnet.tenant_id');
  ownTenant(caller, s.tenantId, 'subnet.tenant_id');
  const p4 = prefix('subnet.prefix_v4', s.prefixV4, 4);
  if (p4.len < 8 || p4.len > 30) throw invalidArgument('subnet.prefix_v4', 'length must be 8-30');
  if (s.prefixV6) prefix('subnet.prefix_v6', s.prefixV6, 6);
  const overlap = store.list('subnet').find((o) => o.key !== s.id && (contains(parsePrefix(o.value.prefixV4), p4) || contains(p4, parsePrefix(o.value.prefixV4))));
  if (overlap) throw invalidArgument('subnet.prefix_v4', `${s.prefixV4} overlaps subnet ${overlap.key} (${overlap.value.prefixV4})`);
  return create(SubnetSchema, s);
}

export function validateCatalog(c: NetworkCatalog, caller: Caller): NetworkCatalog {
  if (caller.role !== 'operator') throw permissionDenied('only operators manage network catalogs', `catalog/${c.name}`);
  id('network_catalog.name', c.name);
  if (c.networks.length === 0) throw invalidArgument('network_catalog.networks', 'at least one network');
  const names = new Set<string>();
  const tags = new Set<number>();
  c.networks.forEach((n, i) => {
    const f = `network_catalog.networks[${i}]`;
    if (n.name !== 'private' && n.name !== 'public') throw invalidArgument(`${f}.name`, 'must be "private" or "public"');
    if (names.has(n.name)) throw invalidArgument(`${f}.name`, `network ${n.name} twice`);
    names.add(n.name);
    if (!IFNAME.test(n.loopback)) throw invalidArgument(`${f}.loopback`, `"${n.loopback.slice(0, 40)}" is not an interface name`);
    if (n.uplinks.length === 0) throw invalidArgument(`${f}.uplinks`, 'at least one uplink');
    n.uplinks.forEach((u, j) => { if (!IFNAME.test(u)) throw invalidArgument(`${f}.uplinks[${j}]`, `"${u.slice(0, 40)}" is not an interface name`); });
    if (n.acceptedPrefixes.length === 0) throw invalidArgument(`${f}.accepted_prefixes`, 'at least one prefix');
    n.acceptedPrefixes.forEach((p, j) => prefix(`${f}.accepted_prefixes[${j}]`, p));
    if (n.routeTag < 1) throw invalidArgument(`${f}.route_tag`, 'must be 1 or more');
    if (tags.has(n.routeTag)) throw invalidArgument(`${f}.route_tag`, `tag ${n.routeTag} is used by another network`);
    tags.add(n.routeTag);
  });
  if (!names.has('private')) throw invalidArgument('network_catalog.networks', 'a private network is required');
  if (c.bgpListen === BgpListen.UNSPECIFIED) throw invalidArgument('network_catalog.bgp_listen', 'must be PORT_179, PORT_20179 or NONE');
  if (c.multipath === Multipath.UNSPECIFIED) throw invalidArgument('network_catalog.multipath', 'must be ECMP or ACTIVE_STANDBY');
  return create(NetworkCatalogSchema, c);
}

/** A host as given; addresses are checked here, allocated by IPAM when empty. */
export function validateHost(h: Host, store: Reader, caller: Caller): Host {
  if (caller.role !== 'operator') throw permissionDenied('only operators (and provisioning) manage hosts', `host/${h.id}`);
  id('host.id', h.id, HOST_ID);
  const subnet = store.get('subnet', h.subnetId);
  if (!subnet) throw notFound(`subnet/${h.subnetId}`, 'host.subnet_id');
  if (!store.get('catalog', h.catalog)) throw notFound(`catalog/${h.catalog}`, 'host.catalog');
  if (!Number.isInteger(h.asn) || h.asn < 1 || h.asn > 4294967295) throw invalidArgument('host.asn', `${h.asn} is not an ASN (1-4294967295)`);
  const sp = parsePrefix(subnet.value.prefixV4);
  h.addresses.forEach((a, i) => {
    const p = prefix(`host.addresses[${i}]`, a);
    if (p.len !== (p.family === 4 ? 32 : 128)) throw invalidArgument(`host.addresses[${i}]`, `${a} is not a host address (/32 or /128)`);
    if (p.family === 4 && !contains(sp, p)) throw invalidArgument(`host.addresses[${i}]`, `${a} is outside subnet ${subnet.key} (${subnet.value.prefixV4})`);
  });
  h.publicAddresses.forEach((a, i) => {
    const p = prefix(`host.public_addresses[${i}]`, a);
    if (p.len !== (p.family === 4 ? 32 : 128)) throw invalidArgument(`host.public_addresses[${i}]`, `${a} is not a host address`);
  });
  h.uplinks.forEach((u, i) => { if (!IFNAME.test(u)) throw invalidArgument(`host.uplinks[${i}]`, `"${u.slice(0, 40)}" is not an interface name`); });
  return create(HostSchema, h);
}

export function validateObject(o: NetworkObject, store: Reader, caller: Caller): NetworkObject {
  id('network_object.id', o.id);
  if (!store.get('tenant', o.tenantId)) throw notFound(`tenant/${o.tenantId}`, 'network_object.tenant_id');
  ownTenant(caller, o.tenantId, 'network_object.tenant_id');
  text('network_object.description', o.description, LIMITS.descriptionLength);
  if (o.prefixes.length === 0) throw invalidArgument('network_object.prefixes', 'an object needs at least one prefix');
  if (o.prefixes.length > LIMITS.prefixesPerObject) throw invalidArgument('network_object.prefixes', `at most ${LIMITS.prefixesPerObject}`);
  const seen = new Set<string>();
  o.prefixes.forEach((p, i) => {
    prefix(`network_object.prefixes[${i}]`, p);
    if (seen.has(p)) throw invalidArgument(`network_object.prefixes[${i}]`, `${p} is listed twice`);
    seen.add(p);
  });
  return create(NetworkObjectSchema, o);
}

export function validateAcl(acl: Acl, store: Reader, caller: Caller): Acl {
  const subnet = store.get('subnet', acl.subnetId);
  if (!subnet) throw notFound(`subnet/${acl.subnetId}`, 'acl.subnet_id');
  ownTenant(caller, subnet.value.tenantId, 'acl.subnet_id');
  const tenant = subnet.value.tenantId;
  if (acl.rules.length > LIMITS.rulesPerAcl) throw invalidArgument('acl.rules', `at most ${LIMITS.rulesPerAcl} rules`);
  const ids = new Set<string>();
  acl.rules.forEach((r, i) => {
    const f = `acl.rules[${i}]`;
    id(`${f}.id`, r.id, RULE_ID);
    if (ids.has(r.id)) throw invalidArgument(`${f}.id`, `duplicate rule id "${r.id}"`);
    ids.add(r.id);
    if (r.action !== Action.ALLOW && r.action !== Action.DENY) throw invalidArgument(`${f}.action`, 'must be ALLOW or DENY');
    if (r.protocol === Protocol.UNSPECIFIED) throw invalidArgument(`${f}.protocol`, 'must be ANY, TCP, UDP, ICMP or ICMPV6');
    text(`${f}.comment`, r.comment, LIMITS.commentLength);
    const src = r.source?.kind;
    if (!src || src.case === undefined) throw invalidArgument(`${f}.source`, 'is required (any, object_id, prefix or subnet_id)');
    if (src.case === 'objectId') {
      const o = store.get('object', src.value);
      if (!o) throw notFound(`object/${src.value}`, `${f}.source.object_id`);
      if (o.value.tenantId !== tenant) throw permissionDenied(`object ${src.value} belongs to another tenant`, `object/${src.value}`, `${f}.source.object_id`);
    } else if (src.case === 'prefix') {
      prefix(`${f}.source.prefix`, src.value);
    } else if (src.case === 'subnetId') {
      const s = store.get('subnet', src.value);
      if (!s) throw notFound(`subnet/${src.value}`, `${f}.source.subnet_id`);
      if (s.value.tenantId !== tenant) throw permissionDenied(`subnet ${src.value} belongs to another tenant`, `subnet/${src.value}`, `${f}.source.subnet_id`);
    }
    const dst = r.destination?.kind;
    if (dst?.case === 'hosts') {
      if (dst.value.hostIds.length === 0) throw invalidArgument(`${f}.destination.hosts`, 'list at least one host, or use subnet');
      if (dst.value.hostIds.length > LIMITS.hostsPerRule) throw invalidArgument(`${f}.destination.hosts`, `at most ${LIMITS.hostsPerRule}`);
      dst.value.hostIds.forEach((h, j) => {
        const host = store.get('host', h);
        if (!host) throw notFound(`host/${h}`, `${f}.destination.hosts.host_ids[${j}]`);
        if (host.value.subnetId !== acl.subnetId) throw invalidArgument(`${f}.destination.hosts.host_ids[${j}]`, `host ${h} is not in subnet ${acl.subnetId}`);
      });
    }
    const ported = r.protocol === Protocol.TCP || r.protocol === Protocol.UDP;
    if (r.ports.length > 0 && !ported) throw invalidArgument(`${f}.ports`, 'ports are only allowed with TCP or UDP');
    if (r.ports.length > LIMITS.portsPerRule) throw invalidArgument(`${f}.ports`, `at most ${LIMITS.portsPerRule} ranges`);
    r.ports.forEach((p, j) => {
      const last = p.last === 0 ? p.first : p.last;
      if (p.first < 1 || p.first > 65535) throw invalidArgument(`${f}.ports[${j}].first`, `port ${p.first} is outside 1-65535`);
      if (last > 65535) throw invalidArgument(`${f}.ports[${j}].last`, `port ${last} is outside 1-65535`);
      if (last < p.first) throw invalidArgument(`${f}.ports[${j}]`, `inverted range ${p.first}-${last}`);
    });
  });
  return create(AclSchema, acl);
}

/** What still refers to a resource; a delete is refused while this is non-empty. */
export function referencesTo(store: Reader, kind: 'tenant' | 'subnet' | 'catalog' | 'object' | 'host', key: string): string[] {
  const refs: string[] = [];
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
export function refuseIfReferenced(store: Reader, kind: 'tenant' | 'subnet' | 'catalog' | 'object' | 'host', key: string): void {
  const refs = referencesTo(store, kind, key);
  if (refs.length > 0) throw stillReferenced(`${kind}/${key}`, refs);
}
