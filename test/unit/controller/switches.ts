// A switch's compiled configuration: each port with a host accepts exactly
// that host's addresses on that uplink's network, pinned to its ASN; the
// rest stay in the pool; the text is the golden (which the integration test
// loads into a real FRR) and its version moves only with its content.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { create } from '@bufbuild/protobuf';
import { compileSwitch, renderSwitchFrr } from '../../../controller/src/switches.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { BgpListen, HostSchema, SwitchSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { OPERATOR, PUBLIC_POOL, catalog, putHost, seed } from '../../fixtures/controller-seed.js';
import { SWITCH_GOLDEN_INTENT, switchGoldenPath } from '../../fixtures/goldens.js';

void t.test('the golden', async (t) => {
  t.equal(renderSwitchFrr(SWITCH_GOLDEN_INTENT), readFileSync(switchGoldenPath(), 'utf8'), 'renders as the golden (npm run golden rewrites it)');
});

void t.test('a switch compiled from the hosts on its ports', async (t) => {
  const store = openSqliteStore(':memory:');
  t.teardown(() => store.close());
  await seed(store);
  const sw = (name: string, asn: number) => create(SwitchSchema, { name, asn, routerId: `10.255.0.${asn - 65000}`, ports: ['swp1', 'swp2', 'swp3', 'swp4'], fabricPorts: ['swp48'], poolVlan: 100 });
  await store.transact((tx) => {
    tx.put('switch', 'tor1', sw('tor1', 65001));
    tx.put('switch', 'tor2', sw('tor2', 65002));
    tx.put('catalog', 'bird', Object.assign(catalog('bird'), { bgpListen: BgpListen.PORT_20179 }));
    const cabled = (id: string, cat: string, asn: number, ports: [string, string, string][]) => putHost(tx, create(HostSchema, {
      id, subnetId: 'a-web', catalog: cat, asn, switchPorts: ports.map(([uplink, switchName, port]) => ({ uplink, switchName, port })),
    }), OPERATOR, false, { publicPool: PUBLIC_POOL });
    cabled('web-1', 'standard', 65111, [['eth0', 'tor1', 'swp2'], ['eth1', 'tor2', 'swp2']]);
    cabled('pub-1', 'with-public', 65112, [['eth0', 'tor1', 'swp1'], ['eth2', 'tor2', 'swp3']]);
    cabled('caas-1', 'bird', 65113, [['eth1', 'tor1', 'swp4']]);
  });
  const tor1 = compileSwitch(store, store.get('switch', 'tor1')!.value);
  const tor2 = compileSwitch(store, store.get('switch', 'tor2')!.value);
  const routed = (c: typeof tor1) => c.intent.routed.map((r) => `${r.port}=${r.hostId}:${r.uplink}:${r.asn}:${[...r.v4, ...r.v6].join(',')}${r.peerPort ? `:${r.peerPort}` : ''}`);
  t.same(routed(tor1), ['swp1=pub-1:eth0:65112:10.1.0.3/32', 'swp2=web-1:eth0:65111:10.1.0.2/32', 'swp4=caas-1:eth1:65113:10.1.0.4/32:20179'], 'tor1: in port order, each host\'s private address');
  t.same(tor1.intent.pool, ['swp3'], 'tor1: the free port is in the pool');
  t.same(routed(tor2), ['swp2=web-1:eth1:65111:10.1.0.2/32', 'swp3=pub-1:eth2:65112:198.51.100.1/32'], 'tor2: pub-1\'s public uplink accepts its public address, not its private one');
  t.same(tor2.intent.pool, ['swp1', 'swp4']);
  t.notMatch(tor1.frrConf, / le \d+/, 'no prefix-list entry with a range');
  t.match(tor1.frrConf, / neighbor swp4 port 20179\n/, 'a host whose bgpd listens on 20179 is reached there');
  t.match(tor1.frrConf, /bgp as-path access-list HOSTNET-swp2 seq 5 permit \^65111\(_65111\)\*\$\n/, 'the AS path of the host\'s ASN only');
  t.equal(compileSwitch(store, store.get('switch', 'tor1')!.value).version, tor1.version, 'the same content, the same version');
  await store.transact((tx) => { tx.delete('host', 'caas-1'); });
  const after = compileSwitch(store, store.get('switch', 'tor1')!.value);
  t.not(after.version, tor1.version, 'a host released: a new version');
  t.same(after.intent.pool, ['swp3', 'swp4'], 'its port back in the pool');
  t.notMatch(after.frrConf, /swp4 (interface remote-as|route-map)|HOSTNET-swp4/, 'no session, no filter left on its port');
});
