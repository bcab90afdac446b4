// No policy can cut the host off its ToR: under "deny everything" a BGP
// session from the ToR to the host's listening bgpd (re)establishes over
// link-local addresses (so neighbour discovery works too), while ordinary
// traffic is dropped.
import t from 'tap';
import { Frr, Lab, bgpPeers, listen, probe, torConfig, waitEstablished, waitFor, waitForRoute } from '../../lab/index.js';
import { FirewallClient, tableText } from '../../fixtures/drivers.js';
import { loadPolicy } from '../../fixtures/goldens.js';

const HOST = '10.1.0.10';

void t.test('deny-all keeps BGP and ND on the uplinks', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const host = await lab.netns('host');
  const tor = await lab.netns('tor');
  await lab.link(host, 'eth0', tor, 'swp1');
  await host.addAddress('lo', `${HOST}/32`);
  await tor.addAddress('lo', '10.255.0.1/32');

  // The host listens on 179 and the ToR does not: every session is a new inbound connection to the host.
  const hostFrr = await Frr.start(host, {
    bgpPort: 179,
    config: torConfig({ hostname: 'host', asn: 65101, routerId: HOST, ports: ['eth0'], networks: [`${HOST}/32`] }),
  });
  const torFrr = await Frr.start(tor, {
    bgpPort: null,
    config: torConfig({ hostname: 'tor', asn: 65001, routerId: '10.255.0.1', ports: ['swp1'], networks: ['10.255.0.1/32'] }),
  });
  await waitEstablished(torFrr, ['swp1']);
  await waitForRoute(tor, `${HOST}/32`, { protocol: 'bgp' });
  await waitForRoute(host, '10.255.0.1/32', { protocol: 'bgp' });
  await listen(host, 'tcp', HOST, 8080);
  t.equal(await probe(tor, 'tcp', HOST, 8080), 'connected', 'open before the policy');

  const fw = FirewallClient.start(host);
  t.teardown(() => fw.stop());
  const policy = loadPolicy('deny-all');
  if (policy.failsafe) policy.failsafe.bgpPort = 179;
  const r = await fw.policy(policy);
  t.equal(r.ok, true, `deny-all applied ${r.error?.message ?? ''}`);
  t.match(await tableText(host), /tcp dport 179 counter accept comment "failsafe:bgp"/);

  t.equal(await probe(tor, 'tcp', HOST, 8080, { timeoutMs: 700 }), 'timeout', 'ordinary traffic is dropped');
  t.equal((await bgpPeers(torFrr)).get('swp1')?.state, 'Established', 'the running session survives the apply');

  // Force a new session and new neighbour resolution under the policy.
  const dropped = (await bgpPeers(torFrr)).get('swp1')?.connectionsDropped ?? 0;
  await tor.exec(['ip', '-6', 'neigh', 'flush', 'dev', 'swp1']);
  await host.exec(['ip', '-6', 'neigh', 'flush', 'dev', 'eth0']);
  await torFrr.vtysh('clear bgp *');
  await waitFor('the session to reset', async () => (((await bgpPeers(torFrr)).get('swp1')?.connectionsDropped ?? 0) > dropped ? true : undefined),
    { timeoutMs: 10_000 });
  await waitEstablished(torFrr, ['swp1'], 30_000);
  t.pass('a new inbound BGP session to the host establishes under deny-all (BGP and ND failsafes)');
  await waitForRoute(tor, `${HOST}/32`, { protocol: 'bgp' });
  const neigh = await tor.exec(['ip', '-6', 'neigh', 'show', 'dev', 'swp1']);
  t.match(neigh.stdout, /fe80::\S+ lladdr \S+ .*(REACHABLE|STALE|DELAY|PROBE)/, 'neighbour discovery resolved the host');
  t.equal(await probe(tor, 'tcp', HOST, 8080, { timeoutMs: 700 }), 'timeout', 'and ordinary traffic is still dropped');
  await hostFrr.stop();
});
