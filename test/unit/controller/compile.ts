// Per-host compilation: references resolved, host-specific rules only where
// they apply, content-hash versions that move only when the content does,
// and output the agent accepts (its own validators run on it here).
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { compileFirewall, compileRouting } from '../../../controller/src/compile.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { validatePolicy } from '../../../agent/src/firewall/policy.js';
import { validateIntent } from '../../../agent/src/routing/intent.js';
import { AclSchema, Action, HostSchema, NetworkObjectSchema, Protocol } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { OPERATOR, PUBLIC_POOL, seed, putHost } from '../../fixtures/controller-seed.js';

async function world() {
  const store = openSqliteStore(':memory:');
  await seed(store);
  await store.transact((tx) => {
    putHost(tx, create(HostSchema, { id: 'host-a2', subnetId: 'a-web', catalog: 'with-public', asn: 65102 }), OPERATOR, false, { publicPool: PUBLIC_POOL });
    tx.put('acl', 'a-web', create(AclSchema, {
      subnetId: 'a-web',
      rules: [
        { id: 'web', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }], source: { kind: { case: 'objectId', value: 'a-clients' } }, destination: { kind: { case: 'subnet', value: true } } },
        { id: 'ssh-a2', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 22 }], source: { kind: { case: 'subnetId', value: 'a-web' } }, destination: { kind: { case: 'hosts', value: { hostIds: ['host-a2'] } } } },
        { id: 'ping', action: Action.ALLOW, protocol: Protocol.ICMP, source: { kind: { case: 'any', value: true } } },
      ],
    }));
  });
  return store;
}

void t.test('the firewall policy of a host', async (t) => {
  const store = await world();
  const a1 = compileFirewall(store, 'host-a1', { managementPrefixes: ['192.0.2.0/24'] });
  t.same(a1.rules.map((r) => r.id), ['web', 'ping'], 'a rule for other hosts is left out');
  t.same(a1.objects.map((o) => [o.id, o.prefixes]), [['a-clients', ['10.9.0.0/24']]]);
  t.same([a1.hostId, a1.hostAddresses], ['', []], 'nothing host-specific unless a rule is: hosts with the same rules share a policy');
  t.same(a1.failsafe?.uplinks, ['eth0', 'eth1']);
  t.equal(a1.failsafe?.bgpPort, 179);
  const a2 = compileFirewall(store, 'host-a2');
  const ssh = a2.rules.find((r) => r.id === 'ssh-a2');
  t.same(ssh?.destinations, ['10.1.0.2/32', '198.51.100.1/32'], 'host-specific: its own addresses');
  t.same(ssh?.source?.kind, { case: 'prefixes', value: { $typeName: 'hostnet.v1.PrefixList', prefixes: ['10.1.0.0/24'] } }, 'a subnet source becomes its prefixes');
  t.same(a2.failsafe?.uplinks, ['eth0', 'eth1', 'eth2', 'eth3'], 'public uplinks too');
  t.match(a1.version, /^[0-9a-f]{16}$/);
  t.doesNotThrow(() => validatePolicy(a1), 'the agent accepts it');
  t.doesNotThrow(() => validatePolicy(a2), 'the agent accepts it');
  await store.close();
});

void t.test('versions move with content only', async (t) => {
  const store = await world();
  const v1 = compileFirewall(store, 'host-a1').version;
  t.equal(compileFirewall(store, 'host-a1').version, v1, 'same content, same version');
  const r1 = compileRouting(store, 'host-a1').version;
  await store.transact((tx) => tx.put('object', 'b-clients', create(NetworkObjectSchema, { id: 'b-clients', tenantId: 'tenant-b', prefixes: ['10.8.0.0/16'] })));
  t.equal(compileFirewall(store, 'host-a1').version, v1, 'another tenant\'s object does not touch it');
  await store.transact((tx) => tx.put('object', 'a-clients', create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24', '10.9.9.0/24'] })));
  t.not(compileFirewall(store, 'host-a1').version, v1, 'its object changed: a new version');
  t.equal(compileRouting(store, 'host-a1').version, r1, 'routing unaffected by objects');
  await store.close();
});

void t.test('the routing intent of a host', async (t) => {
  const store = await world();
  const a2 = compileRouting(store, 'host-a2', { publicPool: PUBLIC_POOL });
  t.equal(a2.asn, 65102);
  t.equal(a2.routerId, '10.1.0.2');
  t.same(a2.networks.map((n) => [n.name, n.loopback, n.addresses, n.uplinks, n.addressPools]), [
    ['private', 'vni0', ['10.1.0.2/32'], ['eth0', 'eth1'], ['10.1.0.0/24']],
    ['public', 'vni1', ['198.51.100.1/32'], ['eth2', 'eth3'], [PUBLIC_POOL]],
  ]);
  const valid = validateIntent(a2, new Set(['eth0', 'eth1', 'eth2', 'eth3']));
  t.equal(valid.listenPort, 179, 'the agent accepts it');
  t.throws(() => compileRouting(store, 'ghost'), /host\/ghost not found/);
  await store.close();
});
