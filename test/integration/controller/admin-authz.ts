// The authorization matrix over real gRPC on loopback: every AdminService
// method called as operator, tenant A, tenant B, with no token and with a
// wrong token, each against a freshly seeded store; a refused call stores
// nothing.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Metadata, Server, ServerCredentials, credentials, status as Status } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { HostnetError, addService, createClient, type ServiceClient } from '../../../proto/grpc/index.js';
import { AdminService } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import { Action, BgpListen, Multipath, Protocol, SwitchSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { adminService } from '../../../controller/src/admin/service.js';
import { Tokens } from '../../../controller/src/admin/tokens.js';
import { AgentsCa } from '../../../controller/src/identity/ca.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { PUBLIC_POOL, dump, seed } from '../../fixtures/controller-seed.js';
import { bind } from '../../../controller/src/server.js';

type Client = ServiceClient<typeof AdminService extends { method: infer M } ? M : never>;
const TOKENS = { operator: 'operator-token-0123456789', a: 'tenant-a-token-0123456789', b: 'tenant-b-token-0123456789' };
const callers = ['operator', 'a', 'b', 'none', 'wrong'] as const;
type Who = typeof callers[number];

const log = silentLogger();

async function serve(): Promise<{ client: Client; close(): void; state(): string }> {
  const store = openSqliteStore(':memory:');
  await seed(store);
  await store.transact((tx) => { tx.put('switch', 'tor1', create(SwitchSchema, TOR1)); });
  const tokens = Tokens.of([
    { token: TOKENS.operator, caller: { role: 'operator' } },
    { token: TOKENS.a, caller: { role: 'tenant-admin', tenant: 'tenant-a' } },
    { token: TOKENS.b, caller: { role: 'tenant-admin', tenant: 'tenant-b' } },
  ]);
  const server = new Server();
  const identity = { ca: AgentsCa.create().ca, certificateLifetimeMs: 3_600_000, tokenLifetimeMs: 3_600_000 };
  addService(server, AdminService, adminService({ store, tokens, hosts: { publicPool: PUBLIC_POOL }, rollout: () => [], identity }), log);
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AdminService, `127.0.0.1:${port}`, credentials.createInsecure()) as Client;
  return { client, close: () => { client.close(); server.forceShutdown(); void store.close(); }, state: () => dump(store) };
}

function meta(who: Who): Metadata {
  const m = new Metadata();
  if (who === 'none') return m;
  m.set('authorization', `Bearer ${who === 'wrong' ? 'not-a-known-token-at-all' : TOKENS[who]}`);
  return m;
}

const rule = {
  id: 'r', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 22 }], source: { kind: { case: 'any' as const, value: true } },
  destination: { kind: { case: 'subnet' as const, value: true } },
};
const catalog = { name: 'extra', networks: [{ name: 'private', loopback: 'vni0', uplinks: ['eth0'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 }], bgpListen: BgpListen.PORT_179, multipath: Multipath.ECMP };

const TOR1 = { name: 'tor1', asn: 65001, routerId: '10.255.0.1', ports: ['swp1', 'swp2'], poolVlan: 100 };

// Expected status per caller: operator, tenant A, tenant B (no token and a wrong token: UNAUTHENTICATED).
type Row = [string, (c: Client, m: Metadata) => Promise<unknown>, [Status, Status, Status]];
const OK = Status.OK;
const DENIED = Status.PERMISSION_DENIED;
const NOTFOUND = Status.NOT_FOUND;
const rows: Row[] = [
  ['createTenant', (c, m) => c.createTenant({ tenant: { id: 'tenant-c', name: 'C' } }, { metadata: m }), [OK, DENIED, DENIED]],
  ['getTenant', (c, m) => c.getTenant({ id: 'tenant-a' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['listTenants', (c, m) => c.listTenants({}, { metadata: m }), [OK, OK, OK]],
  ['updateTenant', (c, m) => c.updateTenant({ tenant: { id: 'tenant-a', name: 'A2', revision: 1n } }, { metadata: m }), [OK, DENIED, NOTFOUND]],
  ['deleteTenant', (c, m) => c.deleteTenant({ id: 'tenant-a' }, { metadata: m }), [Status.FAILED_PRECONDITION, DENIED, NOTFOUND]],
  ['createSubnet', (c, m) => c.createSubnet({ subnet: { id: 'a-new', tenantId: 'tenant-a', prefixV4: '10.5.0.0/24' } }, { metadata: m }), [OK, OK, DENIED]],
  ['getSubnet', (c, m) => c.getSubnet({ id: 'a-web' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['listSubnets', (c, m) => c.listSubnets({}, { metadata: m }), [OK, OK, OK]],
  ['updateSubnet', (c, m) => c.updateSubnet({ subnet: { id: 'a-web', tenantId: 'tenant-a', name: 'renamed', prefixV4: '10.1.0.0/24', revision: 1n } }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['deleteSubnet', (c, m) => c.deleteSubnet({ id: 'a-web' }, { metadata: m }), [Status.FAILED_PRECONDITION, Status.FAILED_PRECONDITION, NOTFOUND]],
  ['createNetworkCatalog', (c, m) => c.createNetworkCatalog({ networkCatalog: catalog }, { metadata: m }), [OK, DENIED, DENIED]],
  ['getNetworkCatalog', (c, m) => c.getNetworkCatalog({ name: 'standard' }, { metadata: m }), [OK, OK, OK]],
  ['listNetworkCatalogs', (c, m) => c.listNetworkCatalogs({}, { metadata: m }), [OK, OK, OK]],
  ['updateNetworkCatalog', (c, m) => c.updateNetworkCatalog({ networkCatalog: { ...catalog, name: 'standard', revision: 1n } }, { metadata: m }), [OK, DENIED, DENIED]],
  ['deleteNetworkCatalog', (c, m) => c.deleteNetworkCatalog({ name: 'with-public' }, { metadata: m }), [OK, DENIED, DENIED]],
  ['createHost', (c, m) => c.createHost({ host: { id: 'host-a9', subnetId: 'a-web', catalog: 'standard', asn: 65109 } }, { metadata: m }), [OK, DENIED, DENIED]],
  ['getHost', (c, m) => c.getHost({ id: 'host-a1' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['listHosts', (c, m) => c.listHosts({}, { metadata: m }), [OK, OK, OK]],
  ['updateHost', (c, m) => c.updateHost({ host: { id: 'host-a1', subnetId: 'a-web', catalog: 'standard', asn: 65111, addresses: ['10.1.0.1/32'], revision: 1n } }, { metadata: m }), [OK, DENIED, NOTFOUND]],
  ['deleteHost', (c, m) => c.deleteHost({ id: 'host-a1' }, { metadata: m }), [OK, DENIED, NOTFOUND]],
  ['createNetworkObject', (c, m) => c.createNetworkObject({ networkObject: { id: 'a-new', tenantId: 'tenant-a', prefixes: ['10.20.0.0/16'] } }, { metadata: m }), [OK, OK, DENIED]],
  ['getNetworkObject', (c, m) => c.getNetworkObject({ id: 'a-clients' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['listNetworkObjects', (c, m) => c.listNetworkObjects({}, { metadata: m }), [OK, OK, OK]],
  ['updateNetworkObject', (c, m) => c.updateNetworkObject({ networkObject: { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/23'], revision: 1n } }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['deleteNetworkObject', (c, m) => c.deleteNetworkObject({ id: 'b-clients' }, { metadata: m }), [OK, NOTFOUND, OK]],
  ['createAcl', (c, m) => c.createAcl({ acl: { subnetId: 'b-db', rules: [rule] } }, { metadata: m }), [OK, DENIED, OK]],
  ['getAcl', (c, m) => c.getAcl({ subnetId: 'a-web' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['listAcls', (c, m) => c.listAcls({}, { metadata: m }), [OK, OK, OK]],
  ['updateAcl', (c, m) => c.updateAcl({ acl: { subnetId: 'a-web', rules: [rule], revision: 1n } }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['deleteAcl', (c, m) => c.deleteAcl({ subnetId: 'a-web' }, { metadata: m }), [OK, OK, NOTFOUND]],
  ['apply', (c, m) => c.apply({ resources: [{ kind: { case: 'networkObject', value: { id: 'a-new', tenantId: 'tenant-a', prefixes: ['10.20.0.0/16'] } } }] }, { metadata: m }), [OK, OK, DENIED]],
  ['getRollout', (c, m) => c.getRollout({}, { metadata: m }), [OK, OK, OK]],
  ['createEnrollment', (c, m) => c.createEnrollment({ hostId: 'host-a1' }, { metadata: m }), [OK, DENIED, DENIED]],
  // Switches are operators' only: a tenant cannot change them, and does not see them (as if absent).
  ['createSwitch', (c, m) => c.createSwitch({ switch: { ...TOR1, name: 'tor2', routerId: '10.255.0.2' } }, { metadata: m }), [OK, DENIED, DENIED]],
  ['getSwitch', (c, m) => c.getSwitch({ name: 'tor1' }, { metadata: m }), [OK, NOTFOUND, NOTFOUND]],
  ['listSwitches', (c, m) => c.listSwitches({}, { metadata: m }), [OK, OK, OK]],
  ['updateSwitch', (c, m) => c.updateSwitch({ switch: { ...TOR1, poolVlan: 101, revision: 2n } }, { metadata: m }), [OK, NOTFOUND, NOTFOUND]],
  ['deleteSwitch', (c, m) => c.deleteSwitch({ name: 'tor1' }, { metadata: m }), [OK, NOTFOUND, NOTFOUND]],
  ['getSwitchConfig', (c, m) => c.getSwitchConfig({ name: 'tor1' }, { metadata: m }), [OK, NOTFOUND, NOTFOUND]],
];

void t.test('every AdminService method, every caller', async (t) => {
  const methods = new Set(AdminService.methods.map((m) => m.localName));
  t.same(new Set(rows.map((r) => r[0])), methods, 'the matrix covers every method');
  for (const [name, call, expected] of rows) {
    for (const who of callers) {
      const want = who === 'none' || who === 'wrong' ? Status.UNAUTHENTICATED : expected[callers.indexOf(who)] as Status;
      const srv = await serve();
      const before = srv.state();
      let got: Status = Status.OK;
      try {
        await call(srv.client, meta(who));
      } catch (err) {
        got = err instanceof HostnetError ? err.code : Status.UNKNOWN;
      }
      t.equal(Status[got], Status[want], `${name} as ${who}: ${Status[want]}`);
      if (got !== Status.OK) t.equal(srv.state(), before, `${name} as ${who}: nothing stored`);
      srv.close();
    }
  }
});

void t.test('tenant admins see only their own', async (t) => {
  const srv = await serve();
  t.teardown(() => srv.close());
  const a = await srv.client.listNetworkObjects({}, { metadata: meta('a') });
  t.same(a.networkObjects.map((o) => o.id), ['a-clients']);
  const tenants = await srv.client.listTenants({}, { metadata: meta('b') });
  t.same(tenants.tenants.map((x) => x.id), ['tenant-b']);
  const all = await srv.client.listSubnets({}, { metadata: meta('operator') });
  t.same(all.subnets.map((s) => s.id), ['a-web', 'b-db']);
  const filtered = await srv.client.listSubnets({ tenantId: 'tenant-b' }, { metadata: meta('operator') });
  t.same(filtered.subnets.map((s) => s.id), ['b-db']);
  const err = await srv.client.createAcl({ acl: { subnetId: 'b-db', rules: [{ ...rule, source: { kind: { case: 'objectId', value: 'a-clients' } } }] } }, { metadata: meta('b') })
    .then(() => null, (e: unknown) => e as HostnetError);
  t.equal(err?.code, Status.NOT_FOUND, 'B cannot reference A\'s object, and is not told it exists');
  t.equal(err?.detail.field, 'acl.rules[0].source.object_id');
});
