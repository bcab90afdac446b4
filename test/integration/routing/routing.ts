// The agent's routing against real FRR: sessions to both ToRs, the host /32
// in the ToRs' FIBs via link-local next hops, reachable from behind the ToRs;
// hitless re-apply; own out-filter against a prefix added by hand, drift
// repaired; a loopback address deleted by hand restored within a second;
// bad intents refused with nothing changed.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { create } from '@bufbuild/protobuf';
import { Lab, bgpPeers, listen, probe, waitEstablished, waitFor, waitForRoute } from '../../lab/index.js';
import { CLIENT_ADDR, buildFabric } from '../../fixtures/fabric.js';
import { RoutingClient } from '../../fixtures/drivers.js';
import { parseIntentJson } from '../../../agent/src/routing/intent-file.js';
import { parseAdvertised, parseSummary } from '../../../agent/src/routing/bgp-state.js';
import { RoutingIntentSchema, type RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

const HOST = '10.1.0.10';
const loadIntent = (name: string): RoutingIntent =>
  parseIntentJson(readFileSync(new URL(`../../fixtures/intents/${name}.json`, import.meta.url), 'utf8'), name);

void t.test('routing on the host with real FRR', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const f = await buildFabric(lab, { hostPrefixes: [`${HOST}/32`], hostAsn: 65101 });
  const agent = RoutingClient.start(f.host, f.hostFrr.dir);
  t.teardown(() => agent.stop());

  const intent = loadIntent('ecmp');
  const first = await agent.apply(intent);
  t.equal(first.ok, true, `applied: ${first.error?.message ?? ''}`);
  t.same(first.result?.loopbacks?.created, ['vni0'], 'vni0 created');
  t.same(first.result?.loopbacks?.added, [`vni0 ${HOST}/32`], 'with its /32');

  const sessions = await waitEstablished(f.hostFrr, ['eth0', 'eth1']);
  t.equal(sessions.get('eth0')?.remoteAs, 65001, 'eth0 peers with tor1');
  t.equal(sessions.get('eth1')?.remoteAs, 65002, 'eth1 peers with tor2');
  const parsed = parseSummary(await f.hostFrr.vtyshJson('show bgp vrf all summary json'));
  t.same(parsed.map((s) => [s.peer, s.state]).sort(), [['eth0', 'Established'], ['eth1', 'Established']],
    'the agent\'s reader keys unnumbered peers by interface');

  for (const tor of [f.tor1, f.tor2]) {
    const r = await waitForRoute(tor, `${HOST}/32`, { protocol: 'bgp', dev: 'swp1' });
    t.match(r.gateway, /^fe80:/, `${tor.short} has the host /32 via the host's link-local address`);
  }
  const viaClient = await waitFor('two paths to the host at the client', async () => {
    const r = await waitForRoute(f.client, `${HOST}/32`, { protocol: 'bgp' });
    return r.nexthops.length === 2 ? r : undefined;
  }, { timeoutMs: 15_000 }).catch(() => undefined);
  t.equal(viaClient?.nexthops.length, 2, 'the client behind the ToRs has two equal paths (ECMP)');
  await waitForRoute(f.host, `${CLIENT_ADDR}/32`, { protocol: 'bgp' });
  const kernelRoute = (await f.host.exec(['ip', 'route', 'show', `${CLIENT_ADDR}/32`])).stdout;
  t.match(kernelRoute, new RegExp(`src ${HOST.replace(/\./g, '\\.')}`), 'learned routes leave from vni0\'s address (source by tag)');
  await listen(f.host, 'tcp', HOST, 8080);
  t.equal(await probe(f.client, 'tcp', HOST, 8080, { source: CLIENT_ADDR }), 'connected', 'the client reaches the host');

  // A no-op re-apply changes nothing in FRR and drops no session.
  const before = await bgpPeers(f.tor1Frr);
  const again = await agent.apply(intent);
  t.same(again.result?.frr, { add: [], remove: [] }, 'nothing to change the second time');
  t.same(again.result?.loopbacks?.added, [], 'loopbacks unchanged');
  const after = await bgpPeers(f.tor1Frr);
  t.equal(after.get('swp1')?.connectionsDropped, before.get('swp1')?.connectionsDropped, 'no session dropped');

  // Changing the accepted prefixes applies without a reset.
  const wider = create(RoutingIntentSchema, intent);
  wider.version = 'ecmp-2';
  wider.networks[0]?.acceptedPrefixes.push('192.168.0.0/16');
  const changed = await agent.apply(wider);
  t.equal(changed.ok, true);
  t.ok(changed.result?.frr?.add.some((l) => l.includes('192.168.0.0/16')), 'the new accepted prefix went in');
  const running = await f.hostFrr.vtysh('show running-config');
  t.match(running, /ip prefix-list HOSTNET-ACCEPT-private seq 10 permit 192\.168\.0\.0\/16 le 32/);
  const afterChange = await bgpPeers(f.tor1Frr);
  t.equal(afterChange.get('swp1')?.connectionsDropped, before.get('swp1')?.connectionsDropped, 'still no session dropped');
  t.equal(afterChange.get('swp1')?.state, 'Established');

  // A tenant adds a foreign prefix by hand: the agent's out-filter keeps it in; drift is repaired.
  await f.host.exec(['ip', 'route', 'add', 'blackhole', '10.99.0.0/24']);
  await f.hostFrr.vtysh('configure terminal\nrouter bgp 65101\naddress-family ipv4 unicast\nnetwork 10.99.0.0/24\nend');
  await waitFor('the hand-added network in the host BGP table', async () =>
    ((await f.hostFrr.vtysh('show bgp ipv4 unicast 10.99.0.0/24')).includes('10.99.0.0/24') ? true : undefined), { timeoutMs: 5000 });
  await new Promise((r) => setTimeout(r, 1500));
  t.same(parseAdvertised(await f.hostFrr.vtyshJson('show bgp ipv4 unicast neighbors eth0 advertised-routes json')), [`${HOST}/32`],
    'only the host /32 is advertised to the ToR');
  t.same(await tor1Route(f.tor1), [], 'tor1 never sees the foreign prefix');
  const drift = await agent.drift();
  t.ok(drift.result?.remove?.some((l) => l.includes('network 10.99.0.0/24')), 'drift found: the hand-added network');
  t.match(await agent.waitEvent('frr-drift-repaired'), { detail: /network 10\.99\.0\.0\/24/ }, 'drift repaired and reported');
  t.notMatch(await f.hostFrr.vtysh('show running-config'), /10\.99\.0\.0/, 'the hand-added line is gone');
  t.equal((await agent.status()).result?.frrRepairs, 1);

  // The tenant removes the host's own network line by hand: put back with one vtysh call, not a reload.
  const reloads = (await agent.status()).result?.reloads ?? NaN;
  await f.hostFrr.vtysh(`configure terminal\nrouter bgp 65101\naddress-family ipv4 unicast\nno network ${HOST}/32\nend`);
  await waitFor('tor1 without the host /32', async () => ((await f.tor1.routes(`${HOST}/32`)).length === 0 ? true : undefined), { timeoutMs: 5000 });
  await agent.drift();
  t.match(await agent.waitEvent('frr-drift-repaired', 2), { detail: new RegExp(`removed by hand and put back: "network ${HOST.replace(/\./g, '\\.')}/32" \\(in router bgp 65101 > address-family ipv4 unicast\\)`) },
    'the removed network line: put back and said');
  t.equal((await agent.status()).result?.reloads, reloads, 'by vtysh: frr-reload did not run');
  t.match(await f.hostFrr.vtysh('show running-config'), new RegExp(`network ${HOST.replace(/\./g, '\\.')}/32`), 'FRR has it again');
  await waitFor('tor1 has the host /32 again', async () => ((await f.tor1.routes(`${HOST}/32`)).length > 0 ? true : undefined), { timeoutMs: 5000 });
  t.equal((await agent.status()).result?.frrRepairs, 2);

  // A loopback address deleted by hand comes back within a second.
  t.match(await agent.watch(), { ok: true });
  await f.host.exec(['ip', 'address', 'del', `${HOST}/32`, 'dev', 'vni0']);
  const started = Date.now();
  const ev = await agent.waitEvent('loopback-restored', 1, 3000);
  t.ok(Date.now() - started <= 1000, `restored within 1 s (${Date.now() - started} ms)`);
  t.match(ev.detail, /restored vni0 10\.1\.0\.10\/32/);
  t.match((await f.host.exec(['ip', '-br', 'addr', 'show', 'vni0'])).stdout, /10\.1\.0\.10\/32/);
  await f.host.exec(['ip', 'address', 'add', '10.1.0.99/32', 'dev', 'vni0']);
  t.match(await agent.waitEvent('loopback-restored', 2, 3000), { detail: /removed vni0 10\.1\.0\.99\/32/ }, 'an extra address is removed');
  await f.host.exec(['ip', 'link', 'set', 'vni0', 'down']);
  t.match(await agent.waitEvent('loopback-restored', 3, 3000), { detail: /brought up vni0/ }, 'a loopback taken down is brought up');
});

async function tor1Route(tor: Parameters<typeof waitForRoute>[0]): Promise<unknown[]> {
  return tor.routes('10.99.0.0/24');
}

void t.test('bad intents are refused with the field named; nothing changes', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const f = await buildFabric(lab, { hostPrefixes: [`${HOST}/32`], hostAsn: 65101 });
  const agent = RoutingClient.start(f.host, f.hostFrr.dir);
  t.teardown(() => agent.stop());
  t.match(await agent.apply(loadIntent('ecmp')), { ok: true });
  const config = await f.hostFrr.vtysh('show running-config');
  const addrs = (await f.host.exec(['ip', 'addr'])).stdout;
  const cases: [string, (i: RoutingIntent) => void, string][] = [
    ['a non-/32 loopback address', (i) => { if (i.networks[0]) i.networks[0].addresses = ['10.1.0.10/24']; }, 'networks[0].addresses[0]'],
    ['an address outside the subnet', (i) => { if (i.networks[0]) i.networks[0].addresses = ['10.2.0.10/32']; }, 'networks[0].addresses[0]'],
    ['ASN 0', (i) => { i.asn = 0; }, 'asn'],
    ['an unknown uplink', (i) => { i.networks[0]?.uplinks.push('eth7'); }, 'networks[0].uplinks[2]'],
    ['an accepted prefix that does not parse', (i) => { i.networks[0]?.acceptedPrefixes.push('10.0.0.0/99'); }, 'networks[0].accepted_prefixes[1]'],
  ];
  for (const [what, mutate, field] of cases) {
    const i = loadIntent('ecmp');
    mutate(i);
    const r = await agent.apply(i);
    t.equal(r.ok, false, `${what}: refused`);
    t.equal(r.error?.field, field, `${what}: names ${field}`);
  }
  t.equal(await f.hostFrr.vtysh('show running-config'), config, 'FRR configuration unchanged');
  t.equal((await f.host.exec(['ip', 'addr'])).stdout, addrs, 'addresses unchanged');
});
