// Bad intents name the field; good ones come out normalised.
import t from 'tap';
import { IntentError, validateIntent } from '../../../agent/src/routing/intent.js';
import { GOLDEN_INTERFACES, loadIntent } from '../../fixtures/goldens.js';
import type { RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

function fieldOf(mutate: (i: RoutingIntent) => void, name = 'ecmp'): string {
  const i = loadIntent(name);
  mutate(i);
  try {
    validateIntent(i, GOLDEN_INTERFACES);
  } catch (err) {
    if (err instanceof IntentError) return err.field;
    throw err;
  }
  return '(accepted)';
}

const net0 = (i: RoutingIntent) => {
  const n = i.networks[0];
  if (!n) throw new Error('fixture without networks');
  return n;
};

void t.test('bad input names the field', async (t) => {
  const cases: [string, (i: RoutingIntent) => void, string][] = [
    ['non-/32 loopback', (i) => { net0(i).addresses = ['10.1.0.10/31']; }, 'networks[0].addresses[0]'],
    ['bare address', (i) => { net0(i).addresses = ['10.1.0.10']; }, 'networks[0].addresses[0]'],
    ['address outside the subnet', (i) => { net0(i).addresses = ['10.9.0.10/32']; }, 'networks[0].addresses[0]'],
    ['ASN 0', (i) => { i.asn = 0; }, 'asn'],
    ['unknown uplink', (i) => { net0(i).uplinks = ['eth0', 'bond7']; }, 'networks[0].uplinks[1]'],
    ['uplink twice', (i) => { net0(i).uplinks = ['eth0', 'eth0']; }, 'networks[0].uplinks[1]'],
    ['accepted prefix that does not parse', (i) => { net0(i).acceptedPrefixes = ['10.0.0.0/8', 'ten/8']; }, 'networks[0].accepted_prefixes[1]'],
    ['bad address pool', (i) => { net0(i).addressPools = ['10.1.0.0/33']; }, 'networks[0].address_pools[0]'],
    ['no networks', (i) => { i.networks = []; }, 'networks'],
    ['bad loopback name', (i) => { net0(i).loopback = 'vni 0'; }, 'networks[0].loopback'],
    ['no route tag', (i) => { net0(i).routeTag = 0; }, 'networks[0].route_tag'],
    ['bad host id', (i) => { i.hostId = 'Host_A'; }, 'host_id'],
    ['IPv6 router id', (i) => { i.routerId = '2001:db8::1'; }, 'router_id'],
  ];
  for (const [what, mutate, field] of cases) t.equal(fieldOf(mutate), field, what);
  t.equal(fieldOf((i) => { i.primaryUplink = 'eth9'; }, 'active-standby'), 'primary_uplink', 'active-standby needs a real primary');
  t.equal(fieldOf(() => undefined), '(accepted)');
  t.equal(fieldOf((i) => { if (i.networks[1]) i.networks[1].routeTag = 100; }, 'public'), 'networks', 'two networks with one tag');
});

void t.test('normalised', async (t) => {
  const v = validateIntent(loadIntent('active-standby'), GOLDEN_INTERFACES);
  t.equal(v.routerId, '10.1.0.11', 'router id defaults to the first private IPv4 address');
  t.equal(v.listenPort, 20179);
  t.equal(v.multipath, 'active-standby');
  t.same(v.networks[0]?.v6, ['2001:db8:1::11/128']);
});
