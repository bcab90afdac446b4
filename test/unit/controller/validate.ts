// The validation table: good inputs are stored (canonical); bad ones get
// their code and field, and the store is exactly as before each refusal.
// The store is a real SQLite database (in memory).
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { HostnetError } from '../../../proto/grpc/errors.js';
import {
  AclSchema, Action, HostSchema, NetworkObjectSchema, Protocol, SubnetSchema, TenantSchema, type Acl,
} from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import type { Store, Tx } from '../../../controller/src/store/store.js';
import { type Caller, refuseIfReferenced, validateAcl, validateCatalog, validateObject, validateSubnet, validateTenant } from '../../../controller/src/validate.js';
import { OPERATOR, PUBLIC_POOL, TENANT_A, TENANT_B, catalog, dump, seed, putHost } from '../../fixtures/controller-seed.js';

async function fresh(): Promise<Store> {
  const store = openSqliteStore(':memory:');
  await seed(store);
  return store;
}

/** The error a transaction is refused with (undefined: it committed). */
async function refusal(store: Store, fn: (tx: Tx) => unknown): Promise<HostnetError | undefined> {
  try {
    await store.transact(fn);
  } catch (e) {
    return e as HostnetError;
  }
  return undefined;
}

/** An ACL of subnet a-web from plain rule objects (create() builds the nested messages). */
const acl = (rules: object[]): Acl => create(AclSchema, { subnetId: 'a-web', rules: rules as never });
const rule = (over: Record<string, unknown> = {}): object => ({
  id: 'r1', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 80 }],
  source: { kind: { case: 'objectId', value: 'a-clients' } }, destination: { kind: { case: 'subnet', value: true } }, ...over,
});

type Attempt = (tx: Tx, caller: Caller) => void;
const cases: [string, Caller, Attempt, Status, string][] = [
  ['malformed prefix', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.300/24'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes[0]'],
  ['non-canonical prefix', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.1/24'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes[0]'],
  ['prefix without length', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.1'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes[0]'],
  ['upper-case IPv6', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['2001:DB8::/32'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes[0]'],
  ['empty object', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a' }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes'],
  ['duplicate prefix', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8', '10.0.0.0/8'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.prefixes[1]'],
  ['overlong description', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'], description: 'd'.repeat(1 << 20) }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.description'],
  ['odd id', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'Web Servers', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.id'],
  ['overlong id', TENANT_A, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'a'.repeat(64), tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'] }), tx, c); }, Status.INVALID_ARGUMENT, 'network_object.id'],
  ['control characters in a name', OPERATOR, (_tx, c) => { validateTenant(create(TenantSchema, { id: 't', name: 'a\u0000b' }), c); }, Status.INVALID_ARGUMENT, 'tenant.name'],
  ['object of another tenant', TENANT_B, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'] }), tx, c); }, Status.PERMISSION_DENIED, 'network_object.tenant_id'],
  ['missing tenant', OPERATOR, (tx, c) => { validateObject(create(NetworkObjectSchema, { id: 'x', tenantId: 'nope', prefixes: ['10.0.0.0/8'] }), tx, c); }, Status.NOT_FOUND, 'network_object.tenant_id'],
  ['port 0', TENANT_A, (tx, c) => { validateAcl(acl([rule({ ports: [{ first: 0 }] })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].ports[0].first'],
  ['port 65536', TENANT_A, (tx, c) => { validateAcl(acl([rule({ ports: [{ first: 80, last: 65536 }] })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].ports[0].last'],
  ['inverted range', TENANT_A, (tx, c) => { validateAcl(acl([rule({ ports: [{ first: 90, last: 80 }] })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].ports[0]'],
  ['ports on ICMP', TENANT_A, (tx, c) => { validateAcl(acl([rule({ protocol: Protocol.ICMP })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].ports'],
  ['missing object', TENANT_A, (tx, c) => { validateAcl(acl([rule({ source: { kind: { case: 'objectId', value: 'ghost' } } })]), tx, c); }, Status.NOT_FOUND, 'acl.rules[0].source.object_id'],
  ['another tenant\'s object (not revealed to a tenant)', TENANT_A, (tx, c) => { validateAcl(acl([rule({ source: { kind: { case: 'objectId', value: 'b-clients' } } })]), tx, c); }, Status.NOT_FOUND, 'acl.rules[0].source.object_id'],
  ['another tenant\'s object, even for an operator', OPERATOR, (tx, c) => { validateAcl(acl([rule({ source: { kind: { case: 'objectId', value: 'b-clients' } } })]), tx, c); }, Status.PERMISSION_DENIED, 'acl.rules[0].source.object_id'],
  ['another tenant\'s subnet ACL', TENANT_B, (tx, c) => { validateAcl(acl([rule()]), tx, c); }, Status.PERMISSION_DENIED, 'acl.subnet_id'],
  ['duplicate rule ids', TENANT_A, (tx, c) => { validateAcl(acl([rule(), rule()]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[1].id'],
  ['missing source', TENANT_A, (tx, c) => { validateAcl(acl([rule({ source: undefined })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].source'],
  ['host of another subnet', OPERATOR, (tx, c) => {
    tx.put('host', 'host-b1', create(HostSchema, { id: 'host-b1', subnetId: 'b-db', catalog: 'standard', asn: 1, addresses: ['10.2.0.5/32'] }));
    validateAcl(acl([rule({ destination: { kind: { case: 'hosts', value: { hostIds: ['host-b1'] } } } })]), tx, c);
  }, Status.INVALID_ARGUMENT, 'acl.rules[0].destination.hosts.host_ids[0]'],
  ['a huge comment', TENANT_A, (tx, c) => { validateAcl(acl([rule({ comment: 'x'.repeat(1 << 20) })]), tx, c); }, Status.INVALID_ARGUMENT, 'acl.rules[0].comment'],
  ['overlapping subnet', OPERATOR, (tx, c) => { validateSubnet(create(SubnetSchema, { id: 'x', tenantId: 'tenant-a', prefixV4: '10.1.0.128/25' }), tx, c); }, Status.INVALID_ARGUMENT, 'subnet.prefix_v4'],
  ['subnet with host bits', OPERATOR, (tx, c) => { validateSubnet(create(SubnetSchema, { id: 'x', tenantId: 'tenant-a', prefixV4: '10.5.0.1/24' }), tx, c); }, Status.INVALID_ARGUMENT, 'subnet.prefix_v4'],
  ['tenant admin creating a tenant', TENANT_A, (_tx, c) => { validateTenant(create(TenantSchema, { id: 'x', name: 'x' }), c); }, Status.PERMISSION_DENIED, ''],
  ['catalog without bgp_listen', OPERATOR, (_tx, c) => { const k = catalog('x'); k.bgpListen = 0; validateCatalog(k, c); }, Status.INVALID_ARGUMENT, 'network_catalog.bgp_listen'],
  ['catalog with a bad accepted prefix', OPERATOR, (_tx, c) => { const k = catalog('x'); k.networks[0]?.acceptedPrefixes.push('10/8'); validateCatalog(k, c); }, Status.INVALID_ARGUMENT, 'network_catalog.networks[0].accepted_prefixes[1]'],
  ['host ASN 0', OPERATOR, (tx, c) => { putHost(tx, create(HostSchema, { id: 'h2', subnetId: 'a-web', catalog: 'standard', asn: 0 }), c, false); }, Status.INVALID_ARGUMENT, 'host.asn'],
  ['host address outside its subnet', OPERATOR, (tx, c) => { putHost(tx, create(HostSchema, { id: 'h2', subnetId: 'a-web', catalog: 'standard', asn: 1, addresses: ['10.2.0.9/32'] }), c, false); }, Status.INVALID_ARGUMENT, 'host.addresses[0]'],
  ['host address taken', OPERATOR, (tx, c) => { putHost(tx, create(HostSchema, { id: 'h2', subnetId: 'a-web', catalog: 'standard', asn: 1, addresses: ['10.1.0.1/32'] }), c, false); }, Status.INVALID_ARGUMENT, 'host.addresses[0]'],
  ['duplicate host id', OPERATOR, (tx, c) => { putHost(tx, create(HostSchema, { id: 'host-a1', subnetId: 'a-web', catalog: 'standard', asn: 1 }), c, false); }, Status.ALREADY_EXISTS, ''],
  ['host in a missing subnet', OPERATOR, (tx, c) => { putHost(tx, create(HostSchema, { id: 'h2', subnetId: 'nope', catalog: 'standard', asn: 1 }), c, false); }, Status.NOT_FOUND, 'host.subnet_id'],
  ['deleting an object an ACL uses', OPERATOR, (tx) => { refuseIfReferenced(tx, 'object', 'a-clients'); }, Status.FAILED_PRECONDITION, ''],
  ['deleting a subnet with hosts', OPERATOR, (tx) => { refuseIfReferenced(tx, 'subnet', 'a-web'); }, Status.FAILED_PRECONDITION, ''],
  ['deleting a tenant with subnets', OPERATOR, (tx) => { refuseIfReferenced(tx, 'tenant', 'tenant-b'); }, Status.FAILED_PRECONDITION, ''],
];

void t.test('every refusal has its code and field, and stores nothing', async (t) => {
  for (const [what, caller, attempt, code, field] of cases) {
    const store = await fresh();
    const before = dump(store);
    const err: unknown = await refusal(store, (tx) => attempt(tx, caller));
    t.ok(err instanceof HostnetError, `${what}: refused with a HostnetError (${(err as Error | undefined)?.message ?? 'accepted!'})`);
    t.equal((err as HostnetError).code, code, `${what}: ${Status[code]}`);
    t.equal((err as HostnetError).detail.field, field, `${what}: field ${field || '(none)'}`);
    t.equal(dump(store), before, `${what}: the store is unchanged`);
    await store.close();
  }
});

void t.test('references are named when a delete is refused', async (t) => {
  const store = await fresh();
  const err = (() => { try { refuseIfReferenced(store, 'object', 'a-clients'); } catch (e) { return e as HostnetError; } return undefined; })();
  t.same(err?.detail.referencedBy, ['acl/a-web rule web']);
  t.match(err?.message, /object\/a-clients is still referenced by acl\/a-web rule web/);
  await store.close();
});

void t.test('good inputs pass and come out as stored', async (t) => {
  const store = await fresh();
  const r = await store.transact((tx) => {
    const o = validateObject(create(NetworkObjectSchema, { id: 'a-more', tenantId: 'tenant-a', prefixes: ['10.10.0.0/16', '2001:db8::/32'] }), tx, TENANT_A);
    tx.put('object', o.id, o);
    const a = validateAcl(acl([rule(), rule({ id: 'r2', protocol: Protocol.ICMP, ports: [], source: { kind: { case: 'any', value: true } } })]), tx, TENANT_A);
    tx.put('acl', a.subnetId, a);
  });
  t.equal(r.revision, 2, 'one new revision for the whole transaction');
  t.equal(store.get('acl', 'a-web')?.value.rules.length, 2);
  await store.close();
});

void t.test('IPAM: lowest free address, never twice, returned on delete; public pool', async (t) => {
  const store = await fresh();
  t.same(store.get('host', 'host-a1')?.value.addresses, ['10.1.0.1/32'], 'the seeded host got the first address');
  const h2 = (await store.transact((tx) => putHost(tx, create(HostSchema, { id: 'host-a2', subnetId: 'a-web', catalog: 'standard', asn: 65102 }), OPERATOR, false))).result;
  t.same(h2.addresses, ['10.1.0.2/32']);
  await store.transact((tx) => tx.delete('host', 'host-a1'));
  const h3 = (await store.transact((tx) => putHost(tx, create(HostSchema, { id: 'host-a3', subnetId: 'a-web', catalog: 'standard', asn: 65103 }), OPERATOR, false))).result;
  t.same(h3.addresses, ['10.1.0.1/32'], 'a deleted host\'s address is free again');
  const pub = (await store.transact((tx) => putHost(tx, create(HostSchema, { id: 'host-p', subnetId: 'a-web', catalog: 'with-public', asn: 65104 }), OPERATOR, false, { publicPool: PUBLIC_POOL }))).result;
  t.same(pub.publicAddresses, ['198.51.100.1/32'], 'a public /32 when the catalog has a public network');
  const noPool = await refusal(store, (tx) => putHost(tx, create(HostSchema, { id: 'host-q', subnetId: 'a-web', catalog: 'with-public', asn: 1 }), OPERATOR, false));
  t.equal(noPool?.detail.field, 'host.public_addresses', 'no pool configured: refused, naming the field');
  // Fill a tiny pool.
  await store.transact((tx) => tx.put('subnet', 'tiny', create(SubnetSchema, { id: 'tiny', tenantId: 'tenant-a', prefixV4: '10.3.0.0/30' })));
  for (const id of ['t1', 't2']) await store.transact((tx) => putHost(tx, create(HostSchema, { id, subnetId: 'tiny', catalog: 'standard', asn: 1 }), OPERATOR, false));
  const full = await refusal(store, (tx) => putHost(tx, create(HostSchema, { id: 't3', subnetId: 'tiny', catalog: 'standard', asn: 1 }), OPERATOR, false));
  t.equal(full?.code, Status.FAILED_PRECONDITION);
  t.match(full?.message, /subnet\/tiny \(10\.3\.0\.0\/30\) has no free address left/);
  const all = store.list('host').flatMap((h) => h.value.addresses);
  t.equal(new Set(all).size, all.length, 'no address twice');
  await store.close();
});
