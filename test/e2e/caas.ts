// A CaaS host in the lab, as the platform runs them: Calico's BIRD owns port
// 179 and learns container routes over iBGP; the host's FRR, started with the
// options its agent rendered (bgpd -p 20179), peers unnumbered with both ToRs
// (which connect to 20179), advertises only the host's own addresses,
// active-standby: traffic comes in over the primary ToR, and over the other
// one when the primary uplink is cut. The container routes never reach the
// ToRs.
import t from 'tap';
import { Lab, type Netns, fibRoute, freePort, probe, waitEstablished, waitFor, type Frr } from '../lab/index.js';
import { World } from '../../lab/world.js';

const CONTAINER_ROUTES = ['10.244.4.0/26', '10.244.4.64/26'];

void t.test('a CaaS host beside BIRD', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, {
    grpcPort: await freePort(), httpPort: await freePort(), extraDocs: ['lab/examples/caas.yaml'], log: (l) => t.comment(l),
  });
  t.teardown(() => world.close());
  const h4 = world.host('h4');
  const frr = h4.frr as Frr;
  await world.startCalico('h4', CONTAINER_ROUTES);

  await t.test('BIRD owns 179, bgpd listens on 20179 as the agent rendered its start options', async (t) => {
    const listening = (await h4.ns.exec(['ss', '-Hltnp'])).stdout;
    t.match(listening, /:179\s.*"bird"/, 'bird listens on 179');
    t.match(listening, /:20179\s.*"bgpd"/, 'bgpd listens on 20179');
    t.notMatch(listening, /:179\s.*"bgpd"/, 'bgpd is not on 179');
    t.match((await h4.ns.exec(['cat', `${frr.dir}/daemons`])).stdout, /bgpd_options="-A 127\.0\.0\.1 -p 20179"/, 'the agent wrote bgpd\'s start options');
    t.match((await h4.ns.exec(['nft', 'list', 'table', 'inet', 'hostnet'])).stdout, /tcp dport 20179 counter packets \d+ bytes \d+ accept comment "failsafe:bgp"/, 'the firewall\'s BGP failsafe follows the port');
    for (const tor of world.torFrr) await waitEstablished(tor, [h4.torPort]);
    t.pass('both ToRs have an Established session with h4');
    t.match((await h4.ns.exec(['ip', 'route', 'show', 'proto', 'bird'])).stdout, /10\.244\.4\.0\/26 via 10\.250\.0\.2/, 'the container routes are in the host\'s kernel (from BIRD)');
  });

  await t.test('the ToRs carry only the host\'s own addresses; no container route', async (t) => {
    for (const [i, tor] of world.torFrr.entries()) {
      const fromH4 = await tor.vtyshJson<{ routes?: Record<string, unknown> }>(`show bgp ipv4 unicast neighbors ${h4.torPort} routes json`);
      t.same(Object.keys(fromH4.routes ?? {}), [`${h4.address}/32`], `tor${i + 1} learns exactly h4's /32 from it`);
      for (const r of CONTAINER_ROUTES) t.equal(await fibRoute(world.tors[i] as Netns, r), undefined, `tor${i + 1} has no route to ${r}`);
    }
  });

  await t.test('active-standby: in over the primary ToR, over the standby when the primary uplink is cut', async (t) => {
    const viaPrimary = await waitFor('the client\'s single path to h4 via tor1', async () => {
      const r = await fibRoute(world.client, `${h4.address}/32`);
      return r && r.nexthops.length === 0 && r.dev === 'eth0' ? r : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    t.equal(viaPrimary.dev, 'eth0', 'one path, through tor1 (the standby sees a prepended path)');
    t.equal(await probe(world.client, 'tcp', h4.address, 443, { timeoutMs: 1000 }), 'connected', 'client -> h4:443 over the primary');
    await h4.ns.down('eth0');
    const viaStandby = await waitFor('the client\'s path to h4 via tor2', async () => {
      const r = await fibRoute(world.client, `${h4.address}/32`);
      return r?.dev === 'eth1' ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    t.equal(viaStandby.dev, 'eth1', 'traffic moves to the standby ToR');
    t.equal(await probe(world.client, 'tcp', h4.address, 443, { timeoutMs: 1000 }), 'connected', 'client -> h4:443 over the standby');
    await h4.ns.up('eth0');
    await waitFor('back on the primary', async () => ((await fibRoute(world.client, `${h4.address}/32`))?.dev === 'eth0' ? true : undefined),
      { timeoutMs: 30_000, intervalMs: 100 });
  });
});
