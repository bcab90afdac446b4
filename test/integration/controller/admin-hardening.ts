// What the admin API accepted before and every agent then refused, or that
// meant something else than written, or that broke an invariant on update,
// leaked another tenant's data, or lost a concurrent writer's change: each is
// refused now, with the field named, and changes nothing. Real gRPC on
// loopback, a real SQLite file.
import t, { type Test } from 'tap';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Metadata, Server, ServerCredentials, credentials, status as Status } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { HostnetError, addService, createClient, type ServiceClient } from '../../../proto/grpc/index.js';
import { AdminService, type Resource } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import { AclSchema, Action, BgpListen, HostSchema, Multipath, NetworkObjectSchema, Protocol, SubnetSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { adminService } from '../../../controller/src/admin/service.js';
import { Tokens } from '../../../controller/src/admin/tokens.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import type { Store } from '../../../controller/src/store/store.js';
import { bind } from '../../../controller/src/server.js';
import { PUBLIC_POOL, dump, putHost, seed, OPERATOR } from '../../fixtures/controller-seed.js';

type Client = ServiceClient<typeof AdminService extends { method: infer M } ? M : never>;
const TOKENS = { operator: 'operator-token-0123456789', a: 'tenant-a-token-0123456789', b: 'tenant-b-token-0123456789' };

async function serve(t: Test): Promise<{ client: Client; store: Store; meta: (who: keyof typeof TOKENS) => Metadata }> {
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-hardening-'));
  const store = openSqliteStore(join(dir, 'hostnet.db'));
  await seed(store);
  // A second host in a-web and a v6-capable subnet for the dual-stack cases.
  await store.transact((tx) => {
    tx.put('subnet', 'a-v6', create(SubnetSchema, { id: 'a-v6', tenantId: 'tenant-a', name: 'v6', prefixV4: '10.5.0.0/24', prefixV6: '2001:db8:5::/64' }));
    putHost(tx, create(HostSchema, { id: 'host-a2', subnetId: 'a-web', catalog: 'standard', asn: 65102 }), OPERATOR, false);
  });
  const tokens = Tokens.of([
    { token: TOKENS.operator, caller: { role: 'operator' } },
    { token: TOKENS.a, caller: { role: 'tenant-admin', tenant: 'tenant-a' } },
    { token: TOKENS.b, caller: { role: 'tenant-admin', tenant: 'tenant-b' } },
  ]);
  const server = new Server();
  addService(server, AdminService, adminService({ store, tokens, hosts: { publicPool: PUBLIC_POOL }, rollout: () => [] }), silentLogger());
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AdminService, `127.0.0.1:${port}`, credentials.createInsecure()) as Client;
  t.teardown(async () => { client.close(); server.forceShutdown(); await store.close(); await rm(dir, { recursive: true, force: true }); });
  const meta = (who: keyof typeof TOKENS): Metadata => {
    const m = new Metadata();
    m.set('authorization', `Bearer ${TOKENS[who]}`);
    return m;
  };
  return { client, store, meta };
}

const refusal = (p: Promise<unknown>): Promise<HostnetError | undefined> => p.then(() => undefined, (e: unknown) => HostnetError.from(e));

const anyRule = (over: Record<string, unknown> = {}) => ({
  id: 'r1', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }],
  source: { kind: { case: 'any' as const, value: true } }, destination: { kind: { case: 'subnet' as const, value: true } }, ...over,
});
const acl = (subnetId: string, rules: object[], revision = 0n) => create(AclSchema, { subnetId, rules: rules as never, revision });
const apply = (...resources: Resource['kind'][]) => ({ resources: resources.map((kind) => ({ kind })) });
const catalog = (over: Record<string, unknown>) => ({
  name: 'odd', networks: [{ name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 }],
  bgpListen: BgpListen.PORT_179, multipath: Multipath.ECMP, ...over,
});

void t.test('inputs every agent would refuse, or that mean something else than written', async (t) => {
  const { client, store, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  type Case = [string, (c: Client) => Promise<unknown>, Status, string, RegExp];
  const cases: Case[] = [
    ['protocol 99', (c) => c.createAcl({ acl: acl('b-db', [anyRule({ protocol: 99 })]) }, op), Status.INVALID_ARGUMENT, 'acl.rules[0].protocol', /99 is not one of ANY, TCP/],
    ['action 7', (c) => c.createAcl({ acl: acl('b-db', [anyRule({ action: 7 })]) }, op), Status.INVALID_ARGUMENT, 'acl.rules[0].action', /7 is not one of ALLOW, DENY/],
    ['an object id the agent refuses ("web-")', (c) => c.createNetworkObject({ networkObject: { id: 'web-', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'] } }, op), Status.INVALID_ARGUMENT, 'network_object.id', /not ending in "-"/],
    ['a v6 host address outside the subnet\'s prefix_v6', (c) => c.createHost({ host: { id: 'h6', subnetId: 'a-v6', catalog: 'standard', asn: 65106, addresses: ['10.5.0.9/32', '2001:db8:6::9/128'] } }, op),
      Status.INVALID_ARGUMENT, 'host.addresses[1]', /outside subnet a-v6 \(2001:db8:5::\/64\)/],
    ['a v6 host address in a subnet without one', (c) => c.createHost({ host: { id: 'h6', subnetId: 'a-web', catalog: 'standard', asn: 65106, addresses: ['10.1.0.9/32', '2001:db8:6::9/128'] } }, op),
      Status.INVALID_ARGUMENT, 'host.addresses[1]', /subnet a-web has no IPv6 prefix/],
    ['source {any: false}', (c) => c.createAcl({ acl: acl('b-db', [anyRule({ source: { kind: { case: 'any', value: false } } })]) }, op), Status.INVALID_ARGUMENT, 'acl.rules[0].source.any', /must be true/],
    ['a rule without destination', (c) => c.createAcl({ acl: acl('b-db', [anyRule({ destination: undefined })]) }, op), Status.INVALID_ARGUMENT, 'acl.rules[0].destination', /is required/],
    ['destination {subnet: false}', (c) => c.createAcl({ acl: acl('b-db', [anyRule({ destination: { kind: { case: 'subnet', value: false } } })]) }, op), Status.INVALID_ARGUMENT, 'acl.rules[0].destination.subnet', /must be true/],
    ['bgpListen 9', (c) => c.createNetworkCatalog({ networkCatalog: catalog({ bgpListen: 9 }) }, op), Status.INVALID_ARGUMENT, 'network_catalog.bgp_listen', /9 is not one of PORT_179/],
    ['multipath 5', (c) => c.createNetworkCatalog({ networkCatalog: catalog({ multipath: 5 }) }, op), Status.INVALID_ARGUMENT, 'network_catalog.multipath', /5 is not one of ECMP/],
    ['an uplink used by two networks', (c) => c.createNetworkCatalog({ networkCatalog: catalog({ networks: [
      { name: 'private', loopback: 'vni0', uplinks: ['eth0'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 },
      { name: 'public', loopback: 'vni1', uplinks: ['eth0'], acceptedPrefixes: ['0.0.0.0/0'], routeTag: 200 }] }) }, op),
    Status.INVALID_ARGUMENT, 'network_catalog.networks[1].uplinks[0]', /eth0 is used twice/],
    ['a host address listed twice', (c) => c.createHost({ host: { id: 'h7', subnetId: 'a-web', catalog: 'standard', asn: 65107, addresses: ['10.1.0.9/32', '10.1.0.9/32'] } }, op),
      Status.INVALID_ARGUMENT, 'host.addresses[1]', /listed twice/],
    ['two v4 /32s', (c) => c.createHost({ host: { id: 'h7', subnetId: 'a-web', catalog: 'standard', asn: 65107, addresses: ['10.1.0.9/32', '10.1.0.10/32'] } }, op),
      Status.INVALID_ARGUMENT, 'host.addresses[1]', /one IPv4 address/],
    ['prefix_v6 ::/0', (c) => c.createSubnet({ subnet: { id: 'a-all', tenantId: 'tenant-a', prefixV4: '10.6.0.0/24', prefixV6: '::/0' } }, op), Status.INVALID_ARGUMENT, 'subnet.prefix_v6', /length must be 32-124/],
    ['a v6 prefix overlapping another subnet\'s', (c) => c.createSubnet({ subnet: { id: 'a-ov', tenantId: 'tenant-a', prefixV4: '10.6.0.0/24', prefixV6: '2001:db8:5::/48' } }, op),
      Status.INVALID_ARGUMENT, 'subnet.prefix_v6', /overlaps subnet a-v6/],
    ['a subnet re-prefixed away from its live hosts (by its own tenant)', (c) => c.updateSubnet({ subnet: { id: 'a-web', tenantId: 'tenant-a', prefixV4: '10.7.0.0/24', revision: 1n } }, { metadata: meta('a') }),
      Status.FAILED_PRECONDITION, 'subnet.prefix_v4', /host\/host-a1 invalid \(host\.addresses\[0\]: 10\.1\.0\.1\/32 is outside subnet a-web \(10\.7\.0\.0\/24\)\)/],
    ['an object moved to another tenant while an ACL uses it', (c) => c.updateNetworkObject({ networkObject: { id: 'a-clients', tenantId: 'tenant-b', prefixes: ['10.9.0.0/24'], revision: 1n } }, op),
      Status.FAILED_PRECONDITION, 'network_object.tenant_id', /acl\/a-web invalid .*object a-clients belongs to tenant tenant-b/],
    ['a subnet moved to another tenant while its ACL uses the old tenant\'s object', (c) => c.updateSubnet({ subnet: { id: 'a-web', tenantId: 'tenant-b', prefixV4: '10.1.0.0/24', revision: 1n } }, op),
      Status.FAILED_PRECONDITION, 'subnet.tenant_id', /acl\/a-web invalid/],
    ['a catalog given a public network its hosts have no address for', (c) => c.updateNetworkCatalog({ networkCatalog: { ...catalog({ name: 'standard', revision: 1n }), networks: [
      { name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 },
      { name: 'public', loopback: 'vni1', uplinks: ['eth2', 'eth3'], acceptedPrefixes: ['0.0.0.0/0'], routeTag: 200 }] } }, op),
    Status.FAILED_PRECONDITION, 'network_catalog.networks', /needs a public address/],
    ['a host moved out of the subnet whose rule names it', async (c) => {
      await c.updateAcl({ acl: acl('a-web', [anyRule({ destination: { kind: { case: 'hosts', value: { hostIds: ['host-a2'] } } } })], 1n) }, op);
      return c.updateHost({ host: { id: 'host-a2', subnetId: 'a-v6', catalog: 'standard', asn: 65102, revision: 2n } }, op);
    }, Status.FAILED_PRECONDITION, 'host.subnet_id', /acl\/a-web invalid .*host host-a2 is not in subnet a-web/],
  ];
  for (const [what, call, code, field, message] of cases) {
    const before = dump(store);
    const err = await refusal(call(client));
    t.equal(err && Status[err.code], Status[code], `${what}: ${Status[code]}`);
    t.equal(err?.detail.field, field, `${what}: names ${field}`);
    t.match(err?.detail.message, message, `${what}: ${err?.detail.message ?? 'accepted!'}`);
    if (what.startsWith('a host moved')) continue; // its set-up wrote the ACL first
    t.equal(dump(store), before, `${what}: nothing changed`);
  }
});

void t.test('errors never reveal another tenant\'s ids or prefixes', async (t) => {
  const { client, meta } = await serve(t);
  const a = { metadata: meta('a') };
  const overlap = await refusal(client.createSubnet({ subnet: { id: 'a-ov', tenantId: 'tenant-a', prefixV4: '10.2.0.0/25' } }, a));
  t.equal(overlap?.detail.field, 'subnet.prefix_v4');
  t.equal(overlap?.detail.message, 'subnet.prefix_v4: 10.2.0.0/25 overlaps an address range that is already taken', 'B\'s subnet is not named');
  const ref = await refusal(client.createAcl({ acl: acl('a-v6', [anyRule({ source: { kind: { case: 'subnetId', value: 'b-db' } } })]) }, a));
  t.equal(ref?.code, Status.NOT_FOUND, 'B\'s subnet is as good as absent');
  t.notMatch(ref?.message, /tenant-b/, `no owner in "${ref?.message ?? ''}"`);
  const taken = await refusal(client.createNetworkObject({ networkObject: { id: 'b-clients', tenantId: 'tenant-a', prefixes: ['10.0.0.0/8'] } }, a));
  t.equal(taken?.code, Status.ALREADY_EXISTS);
  t.equal(taken?.message, 'object/b-clients: the id is taken', 'an id taken by B: taken, no more');
  const op = await refusal(client.createSubnet({ subnet: { id: 'a-ov', tenantId: 'tenant-a', prefixV4: '10.2.0.0/25' } }, { metadata: meta('operator') }));
  t.match(op?.message, /overlaps subnet b-db \(10\.2\.0\.0\/24\)/, 'an operator, who sees everything, is told which');
});

void t.test('a reference error names the field that holds the reference', async (t) => {
  const { client, meta } = await serve(t);
  const err = await refusal(client.createAcl({ acl: acl('b-db', [anyRule({ source: { kind: { case: 'objectId', value: 'nope' } } })]) }, { metadata: meta('operator') }));
  t.equal(err?.code, Status.NOT_FOUND);
  t.equal(err?.message, 'acl.rules[0].source.object_id: object/nope not found');
});

void t.test('optimistic concurrency: a stale revision is refused, naming the current one', async (t) => {
  const { client, store, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  const read = (await client.getAcl({ subnetId: 'a-web' }, op)).acl;
  t.equal(read?.revision, 1n, 'a read carries the revision');
  const missing = await refusal(client.updateAcl({ acl: acl('a-web', [anyRule()]) }, op));
  t.equal(missing?.detail.field, 'acl.revision', 'an update without the revision read is refused');
  const first = await client.updateAcl({ acl: acl('a-web', [anyRule()], 1n) }, op);
  t.equal(first.acl?.revision, first.revision, 'the answer carries the new revision');
  const before = dump(store);
  const stale = await refusal(client.updateAcl({ acl: acl('a-web', [anyRule({ id: 'r2' })], 1n) }, op));
  t.equal(stale && Status[stale.code], 'ABORTED');
  t.equal(stale?.message, `acl/a-web changed after revision 1 (it is at revision ${first.revision} now): read it again, redo your change and retry`);
  t.equal(dump(store), before, 'nothing written');
});

void t.test('20 clients appending to one ACL by read-modify-write: every acknowledged rule remains', async (t) => {
  const { client, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  let acknowledged = 0;
  let conflicts = 0;
  await Promise.all(Array.from({ length: 20 }, async (_, w) => {
    for (let i = 0; i < 10; i++) {
      for (;;) {
        const current = (await client.getAcl({ subnetId: 'a-web' }, op)).acl;
        if (!current) throw new Error('no ACL');
        current.rules.push(create(AclSchema, { rules: [anyRule({ id: `w${w}-${i}`, ports: [{ first: 1000 + w * 10 + i }] })] as never }).rules[0] as never);
        const done = await client.updateAcl({ acl: current }, op).then(() => true, (e: unknown) => {
          if (HostnetError.from(e).code === Status.ABORTED) return false;
          throw e;
        });
        if (done) break;
        conflicts++;
      }
      acknowledged++;
    }
  }));
  const rules = (await client.getAcl({ subnetId: 'a-web' }, op)).acl?.rules ?? [];
  t.equal(acknowledged, 200);
  t.equal(rules.length, 201, `200 appended rules and the seeded one remain (${conflicts} conflicts were retried)`);
  t.equal(new Set(rules.map((r) => r.id)).size, 201, 'each once');
});

void t.test('Apply is one transaction: a bad second resource stores nothing of the first', async (t) => {
  const { client, store, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  const before = dump(store);
  const err = await refusal(client.apply(apply(
    { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-new', tenantId: 'tenant-a', prefixes: ['10.20.0.0/16'] }) },
    { case: 'acl', value: acl('a-web', [anyRule({ ports: [{ first: 0 }] })]) },
  ), op));
  t.equal(err?.detail.field, 'resources[1].acl.rules[0].ports[0].first', 'the error names the resource and the field');
  t.equal(err?.message, 'resources[1].acl.rules[0].ports[0].first: port 0 is outside 1-65535');
  t.equal(dump(store), before, 'the first resource was not stored');
  const ok = await client.apply(apply(
    { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-new', tenantId: 'tenant-a', prefixes: ['10.20.0.0/16'] }) },
    { case: 'acl', value: acl('a-web', [anyRule({ source: { kind: { case: 'objectId', value: 'a-new' } } })]) },
  ), op);
  t.same(ok.results.map((r) => [r.resource, r.outcome]), [['object/a-new', 1], ['acl/a-web', 2]], 'created, then updated, in one revision');
  t.equal(store.revision(), Number(ok.revision));
  const stale = await refusal(client.apply(apply({ case: 'acl', value: acl('a-web', [anyRule()], 1n) }), op));
  t.equal(stale && Status[stale.code], 'ABORTED', 'a resource given with its revision is a precondition in Apply too');
});

void t.test('addresses never move: a re-apply without addresses keeps them; a named one that is taken is an error', async (t) => {
  const { client, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  const a1 = (await client.getHost({ id: 'host-a1' }, op)).host;
  await client.deleteHost({ id: 'host-a2' }, op);
  // Provisioning sends host-a1 again, without addresses: 10.1.0.1 stays even though nothing lower is free.
  const again = await client.apply(apply({ case: 'host', value: create(HostSchema, { id: 'host-a1', subnetId: 'a-web', catalog: 'standard', asn: 65101 }) }), op);
  t.equal(again.results[0]?.outcome, 3, 'unchanged');
  t.same((await client.getHost({ id: 'host-a1' }, op)).host?.addresses, a1?.addresses, 'the same addresses');
  const h3 = await client.createHost({ host: { id: 'host-a3', subnetId: 'a-web', catalog: 'standard', asn: 65103 } }, op);
  const taken = await refusal(client.updateHost({ host: { id: 'host-a3', subnetId: 'a-web', catalog: 'standard', asn: 65103, addresses: ['10.1.0.1/32'], revision: h3.revision } }, op));
  t.equal(taken?.message, 'host.addresses[0]: 10.1.0.1/32 is in use by host host-a1');
  const dual = await client.createHost({ host: { id: 'host-v6', subnetId: 'a-v6', catalog: 'standard', asn: 65104 } }, op);
  t.same(dual.host?.addresses, ['10.5.0.1/32', '2001:db8:5::1/128'], 'a dual-stack subnet gives a /32 and a /128');
});

void t.test('switches and where hosts are cabled: every bad input named, nothing stored', async (t) => {
  const { client, store, meta } = await serve(t);
  const op = { metadata: meta('operator') };
  const tor = (name: string, over: Record<string, unknown> = {}) => ({ name, asn: 65001, routerId: '10.255.0.1', ports: ['swp1', 'swp2'], fabricPorts: ['swp48'], poolVlan: 100, ...over });
  const tor1 = await client.createSwitch({ switch: tor('tor1') }, op);
  await client.createSwitch({ switch: tor('tor2', { asn: 65002, routerId: '10.255.0.2' }) }, op);
  const cabled = (id: string, ports: [string, string, string][], over: Record<string, unknown> = {}) => ({
    host: { id, subnetId: 'a-web', catalog: 'standard', asn: 65120, switchPorts: ports.map(([uplink, switchName, port]) => ({ uplink, switchName, port })), ...over },
  });
  const h10 = await client.createHost(cabled('host-a10', [['eth0', 'tor1', 'swp1'], ['eth1', 'tor2', 'swp1']]), op);
  t.same(h10.host?.switchPorts.map((p) => `${p.uplink}:${p.switchName}/${p.port}`), ['eth0:tor1/swp1', 'eth1:tor2/swp1'], 'a host cabled to both switches');
  type Case = [string, () => Promise<unknown>, Status, string, RegExp];
  const cases: Case[] = [
    ['two hosts on one port', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp1']]), op), Status.INVALID_ARGUMENT, 'host.switch_ports[0].port', /tor1 swp1 is host host-a10's port/],
    ['an unknown switch', () => client.createHost(cabled('host-a11', [['eth0', 'tor9', 'swp2']]), op), Status.NOT_FOUND, 'host.switch_ports[0].switch_name', /switch\/tor9 not found/],
    ['both uplinks on one switch', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp2'], ['eth1', 'tor1', 'swp1']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[1].switch_name', /switch tor1 already has uplink eth0: each uplink goes to another switch/],
    ['a port that is not an interface name', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp 2; rm -rf']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[0].port', /is not an interface name/],
    ['a port the switch does not have', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp47']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[0].port', /swp47 is not a server port of switch tor1/],
    ['a fabric port', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp48']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[0].port', /swp48 is not a server port of switch tor1/],
    ['an uplink the host does not have', () => client.createHost(cabled('host-a11', [['eth7', 'tor1', 'swp2']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[0].uplink', /"eth7" is not an uplink of this host \(eth0, eth1\)/],
    ['one uplink cabled twice', () => client.createHost(cabled('host-a11', [['eth0', 'tor1', 'swp2'], ['eth0', 'tor2', 'swp2']]), op),
      Status.INVALID_ARGUMENT, 'host.switch_ports[1].uplink', /eth0 is cabled twice/],
    ['a switch ASN 0', () => client.createSwitch({ switch: tor('tor3', { asn: 0 }) }, op), Status.INVALID_ARGUMENT, 'switch.asn', /0 is not an ASN/],
    ['a router id that is not an IPv4 address', () => client.createSwitch({ switch: tor('tor3', { routerId: '2001:db8::1' }) }, op), Status.INVALID_ARGUMENT, 'switch.router_id', /is not an IPv4 address/],
    ['a port listed as server and fabric port', () => client.createSwitch({ switch: tor('tor3', { fabricPorts: ['swp2'] }) }, op), Status.INVALID_ARGUMENT, 'switch.fabric_ports[0]', /swp2 is listed twice/],
    ['a port name that is not an interface name', () => client.createSwitch({ switch: tor('tor3', { ports: ['swp1', 'a/b'] }) }, op), Status.INVALID_ARGUMENT, 'switch.ports[1]', /"a\/b" is not an interface name/],
    ['pool VLAN 4095', () => client.createSwitch({ switch: tor('tor3', { poolVlan: 4095 }) }, op), Status.INVALID_ARGUMENT, 'switch.pool_vlan', /4095 is not a VLAN id/],
    ['a switch name with a space', () => client.createSwitch({ switch: tor('tor 3') }, op), Status.INVALID_ARGUMENT, 'switch.name', /not a valid id/],
    ['a tenant creating a switch', () => client.createSwitch({ switch: tor('tor3') }, { metadata: meta('a') }), Status.PERMISSION_DENIED, '', /only operators manage switches/],
    ['a port taken away from its host', () => client.updateSwitch({ switch: tor('tor1', { ports: ['swp2'], revision: tor1.revision }) }, op),
      Status.FAILED_PRECONDITION, 'switch.ports', /host\/host-a10 invalid \(host\.switch_ports\[0\]\.port: swp1 is not a server port of switch tor1\)/],
    ['a switch deleted while a host is on it', () => client.deleteSwitch({ name: 'tor2' }, op), Status.FAILED_PRECONDITION, '', /host\/host-a10/],
  ];
  for (const [what, call, code, field, message] of cases) {
    const before = dump(store);
    const err = await refusal(call());
    t.equal(err && Status[err.code], Status[code], `${what}: ${Status[code]}`);
    t.equal(err?.detail.field ?? '', field, `${what}: names ${field || 'no field'}`);
    t.match(err?.detail.message, message, `${what}: ${err?.detail.message ?? 'accepted!'}`);
    t.equal(dump(store), before, `${what}: nothing changed`);
  }
  t.equal((await refusal(client.getSwitch({ name: 'tor1' }, { metadata: meta('a') })))?.code, Status.NOT_FOUND, 'a tenant does not see switches');
  const conf = await client.getSwitchConfig({ name: 'tor1' }, op);
  t.match(conf.frrConf, /ip prefix-list HOSTNET-swp1 seq 5 permit 10\.1\.0\.\d+\/32\n!/, 'the compiled configuration permits host-a10\'s /32 on swp1, only it');
  t.match(conf.frrConf, /interface swp2\n description hostnet pool vlan 100\n/, 'the free port is in the pool');
  t.match(conf.version, /^[0-9a-f]{16}$/);
});
