// Peering modes: port 20179 while another process holds 179; active-standby
// (traffic uses the primary, moves to the standby when the primary link goes
// down); a public network whose /32 goes only to the public uplinks and
// whose routes leave from vni1.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Frr, Lab, bgpPeers, listen, probe, torConfig, waitEstablished, waitFor, waitForRoute } from '../../lab/index.js';
import { CLIENT_ADDR, buildFabric } from '../../fixtures/fabric.js';
import { RoutingClient } from '../../fixtures/drivers.js';
import { loadIntent } from '../../fixtures/goldens.js';
import { parseAdvertised } from '../../../agent/src/routing/bgp-state.js';
import { RoutingIntentSchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

void t.test('port 20179 peers while another process holds 179', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const f = await buildFabric(lab, { hostPrefixes: ['10.1.0.11/32'], hostAsn: 65102, hostPort: 20179, torPeerPort: 20179 });
  const squatter = await listen(f.host, 'tcp', '::', 179);
  t.teardown(() => squatter.stop());
  const agent = RoutingClient.start(f.host, f.hostFrr.dir);
  t.teardown(() => agent.stop());
  const intent = loadIntent('active-standby');
  t.match(await agent.apply(intent), { ok: true });
  await waitEstablished(f.tor1Frr, ['swp1']);
  t.pass('tor1 (connecting to port 20179; not listening itself) reached Established with the host');
  const ss = (await f.host.exec(['ss', '-tnlp'])).stdout;
  t.match(ss, /:20179 /, 'bgpd listens on 20179');
  t.match(ss, /:179 .*node/, 'another process holds 179');
});

void t.test('active-standby: traffic uses the primary, then the standby', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const f = await buildFabric(lab, { hostPrefixes: ['10.1.0.11/32'], hostAsn: 65102 });
  const agent = RoutingClient.start(f.host, f.hostFrr.dir);
  t.teardown(() => agent.stop());
  const intent = loadIntent('active-standby');
  intent.bgpListen = 1; // 179 here; the 20179 mode has its own test
  t.match(await agent.apply(intent), { ok: true });
  await waitEstablished(f.hostFrr, ['eth0', 'eth1']);
  await listen(f.host, 'tcp', '10.1.0.11', 8080);
  const viaPrimary = await waitFor('the client to route via tor1 only', async () => {
    const r = await waitForRoute(f.client, '10.1.0.11/32', { protocol: 'bgp' });
    return r.nexthops.length === 0 && r.dev === 'eth0' ? r : undefined;
  }, { timeoutMs: 20_000 });
  t.equal(viaPrimary.dev, 'eth0', 'the client reaches the host through tor1 (the primary) alone');
  await waitForRoute(f.host, `${CLIENT_ADDR}/32`, { protocol: 'bgp', dev: 'eth0' });
  t.equal(await probe(f.client, 'tcp', '10.1.0.11', 8080, { source: CLIENT_ADDR }), 'connected');
  const hostRoute = (await f.host.exec(['ip', 'route', 'show', `${CLIENT_ADDR}/32`])).stdout;
  t.match(hostRoute, /dev eth0/, 'and the host sends through the primary (the standby\'s routes have a lower local preference)');
  t.notMatch(hostRoute, /nexthop/, 'one path, not ECMP');

  await f.host.down('eth0');
  const viaStandby = await waitFor('the client to move to tor2', async () => {
    const r = await waitForRoute(f.client, '10.1.0.11/32', { protocol: 'bgp' });
    return r.dev === 'eth1' ? r : undefined;
  }, { timeoutMs: 20_000 });
  t.equal(viaStandby.dev, 'eth1', 'with the primary link down the client goes through tor2');
  await waitForRoute(f.host, `${CLIENT_ADDR}/32`, { protocol: 'bgp', dev: 'eth1' });
  t.equal(await probe(f.client, 'tcp', '10.1.0.11', 8080, { source: CLIENT_ADDR }), 'connected', 'and traffic flows via the standby');
});

void t.test('a public network: vni1 advertised only upstream of the public uplink, with its own source address', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const f = await buildFabric(lab, { hostPrefixes: ['10.1.0.12/32'], hostAsn: 65103 });
  const pub = await lab.netns('pub');
  await lab.link(f.host, 'eth2', pub, 'swp1');
  await pub.addAddress('lo', '203.0.113.1/32');
  const pubFrr = await Frr.start(pub, {
    config: torConfig({ hostname: 'pub', asn: 64900, routerId: '203.0.113.1', ports: ['swp1'], networks: ['203.0.113.1/32'] }),
  });
  await f.tor1.addAddress('lo', '10.77.0.1/32');
  await f.tor1Frr.vtysh('configure terminal\nrouter bgp 65001\naddress-family ipv4 unicast\nnetwork 10.77.0.1/32\nend');
  const agent = RoutingClient.start(f.host, f.hostFrr.dir);
  t.teardown(() => agent.stop());
  const intent = loadIntent('public');
  if (intent.networks[1]) intent.networks[1].uplinks = ['eth2'];
  const r = await agent.apply(create(RoutingIntentSchema, intent));
  t.equal(r.ok, true, `applied ${r.error?.message ?? ''}`);
  t.same(r.result?.loopbacks?.created, ['vni0', 'vni1'], 'both loopbacks created');
  await waitEstablished(f.hostFrr, ['eth0', 'eth1', 'eth2']);
  await waitForRoute(pub, '198.51.100.12/32', { protocol: 'bgp' });
  await waitForRoute(f.tor1, '10.1.0.12/32', { protocol: 'bgp' });
  await new Promise((res) => setTimeout(res, 1000));
  const advPublic = parseAdvertised(await f.hostFrr.vtyshJson('show bgp ipv4 unicast neighbors eth2 advertised-routes json'));
  const advPrivate = parseAdvertised(await f.hostFrr.vtyshJson('show bgp ipv4 unicast neighbors eth0 advertised-routes json'));
  t.same(advPublic, ['198.51.100.12/32'], 'the public uplink gets only vni1\'s /32');
  t.same(advPrivate, ['10.1.0.12/32'], 'the private uplinks get only vni0\'s /32');
  t.same(await pub.routes('10.1.0.12/32'), [], 'the public side never learns the private address');

  const learnedPublic = await waitForRoute(f.host, '203.0.113.1/32', { protocol: 'bgp' });
  t.equal(learnedPublic.dev, 'eth2');
  t.match((await f.host.exec(['ip', 'route', 'show', '203.0.113.1/32'])).stdout, /src 198\.51\.100\.12/, 'a public route leaves from vni1');
  await waitForRoute(f.host, '10.77.0.1/32', { protocol: 'bgp' });
  t.match((await f.host.exec(['ip', 'route', 'show', '10.77.0.1/32'])).stdout, /src 10\.1\.0\.12/, 'a private route leaves from vni0');
  t.equal((await bgpPeers(f.hostFrr)).get('eth2')?.remoteAs, 64900);
  await pubFrr.stop();
});
