// The switch side of route-hijack protection, in the lab: both ToRs run the
// ToR agent (`hostnet-agent tor`, enrolled, mutual TLS) and get their whole
// FRR configuration from the controller. A tenant with root on its server
// (its agent stopped, its FRR edited by hand) advertises other hosts' and
// tenants' addresses, ranges, a default route, a v6 /128 not its own and a
// spoofed AS path: none enters either ToR, and traffic keeps reaching the
// victims. A server deployed at runtime is reachable through both ToRs; its
// release takes its /32 off both ToRs and its port back to the pool, and its
// address is free only once both switches have applied that; no other port's
// session drops meanwhile. A flood of 100 prefixes trips that port's
// maximum-prefix only.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Lab, bgpPeers, fibRoute, freePort, probe, waitFor, waitForProbe, type Frr, type PeerState } from '../lab/index.js';
import { World } from '../../lab/world.js';

type SwitchView = { name: string; version: string; appliedVersion: string; connected: boolean };

/** The prefixes a ToR accepted (after its inbound policy) from the neighbor on `port`. */
async function acceptedFrom(frr: Frr, port: string): Promise<string[]> {
  const out: string[] = [];
  for (const afi of ['ipv4', 'ipv6']) {
    const j = await frr.vtyshJson<{ routes?: Record<string, unknown> }>(`show bgp ${afi} unicast neighbors ${port} routes json`);
    out.push(...Object.keys(j.routes ?? {}));
  }
  return out.sort();
}

/** Sessions per neighbor on both ToRs: how often each was established and dropped. */
async function sessions(world: World): Promise<Map<string, PeerState>> {
  const all = new Map<string, PeerState>();
  for (const [i, frr] of world.torFrr.entries()) for (const [peer, s] of await bgpPeers(frr)) all.set(`tor${i + 1}:${peer}`, s);
  return all;
}

void t.test('the ToRs, configured by the controller through their agents', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), log: (l) => t.comment(l) });
  t.teardown(() => world.close());
  const [tor1, tor2] = world.torFrr as [Frr, Frr];
  const [h1, h2, h3] = [world.host('h1'), world.host('h2'), world.host('h3')];
  const before = await sessions(world);

  await t.test('each ToR runs what the controller compiled for it, and nothing else', async (t) => {
    const views = await world.api<SwitchView[]>('/api/v1/switches');
    for (const [i, frr] of [tor1, tor2].entries()) {
      const name = `tor${i + 1}`;
      const view = views.find((v) => v.name === name);
      t.ok(view?.connected, `${name}'s agent is connected`);
      t.equal(view?.appliedVersion, view?.version, `${name}'s agent applied the current version`);
      const res = await fetch(`${world.httpUrl}/api/v1/switches/${name}/frr.conf`, { headers: { authorization: `Bearer ${world.adminToken}` } });
      t.equal(await readFile(join(frr.dir, 'frr.conf'), 'utf8'), await res.text(), `${name}'s frr.conf is the controller's text`);
      const running = await frr.vtysh('show running-config');
      t.match(running, new RegExp(`neighbor swp1 interface remote-as ${h1.asn}\\n`), `${name}: h1's port peers with h1's ASN only`);
      t.match(running, new RegExp(`ip prefix-list HOSTNET-swp1 seq 5 permit ${h1.address}/32\\n`), `${name}: and accepts h1's /32`);
      t.match(running, /interface swp5\n description hostnet pool vlan 100\n/, `${name}: a free port is in the pool`);
    }
  });

  await t.test('hijack attempts from a host whose tenant has root: none enters either ToR, traffic reaches the victims', async (t) => {
    // Root on h2: the agent stopped (it would put FRR back at once), FRR edited by hand.
    await world.stopAgent('h2');
    const hijacks = [`${h1.address}/32`, `${h3.address}/32`, '10.1.0.0/24', '10.0.0.0/8', '0.0.0.0/0'];
    const hijack6 = `${h1.address6}/128`;
    await h2.frr?.vtysh(['configure terminal', `router bgp ${h2.asn}`, 'no bgp network import-check',
      'address-family ipv4 unicast', ...hijacks.map((p) => `network ${p}`), 'no neighbor private route-map HOSTNET-OUT-private out', 'exit-address-family',
      'address-family ipv6 unicast', `network ${hijack6}`, 'no neighbor private route-map HOSTNET-OUT-private out', 'exit-address-family']);
    const advertised = await waitFor('h2 advertising the hijacks', async () => {
      const j = await h2.frr?.vtyshJson<{ advertisedRoutes?: Record<string, unknown> }>('show bgp ipv4 unicast neighbors eth0 advertised-routes json');
      const got = Object.keys(j?.advertisedRoutes ?? {});
      return hijacks.every((p) => got.includes(p)) ? got : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    t.ok(hijacks.every((p) => advertised.includes(p)), `h2 sends ${hijacks.join(', ')} to tor1 (and ${hijack6})`);
    // Give the ToRs time to have taken them, were they taking them.
    await new Promise((r) => setTimeout(r, 2000));
    for (const [name, frr] of [['tor1', tor1], ['tor2', tor2]] as const) {
      t.same(await acceptedFrom(frr, h2.torPort), [`${h2.address}/32`, `${h2.address6}/128`].sort(), `${name} takes from h2's port only h2's own /32 and /128`);
      for (const p of [...hijacks, hijack6]) {
        const r = await fibRoute(frr.ns, p);
        t.not(r?.dev ?? r?.nexthops.map((n) => n.dev).join(','), h2.torPort, `${name}: ${p} does not point at h2 (${r?.dev ?? r?.nexthops.map((n) => n.dev).join(',') ?? 'no route'})`);
      }
      t.equal((await fibRoute(frr.ns, `${h1.address}/32`))?.dev, h1.torPort, `${name}: h1's /32 still goes to h1's port`);
      t.equal((await fibRoute(frr.ns, `${h3.address}/32`))?.dev, h3.torPort, `${name}: h3's /32 (tenant B) still goes to h3's port`);
    }
    t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 2000 }), 'connected', 'the client reaches h1:443 (h2 has no such address: h1 answered)');
    t.equal(await probe(h1.ns, 'tcp', h3.address, 5432, { timeoutMs: 2000 }), 'connected', 'h1 reaches tenant B\'s h3:5432');

    // A spoofed origin: h2 sends its own /32 as if it came from h1's ASN behind it.
    await h2.frr?.vtysh(['configure terminal', 'route-map HIJACK-SPOOF permit 10', ` set as-path prepend ${h1.asn}`, 'exit',
      `router bgp ${h2.asn}`, 'address-family ipv4 unicast', 'neighbor private route-map HIJACK-SPOOF out', 'exit-address-family']);
    await h2.frr?.vtysh(`clear bgp ipv4 unicast * soft out`);
    await waitFor('the ToRs dropping h2\'s spoofed route', async () => {
      const got = await Promise.all([tor1, tor2].map((f) => acceptedFrom(f, h2.torPort)));
      return got.every((g) => !g.includes(`${h2.address}/32`)) ? true : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    t.pass(`a path "${h2.asn} ${h1.asn}" is refused on h2's port (its AS path must be ${h2.asn} only)`);
    t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 2000 }), 'connected', 'h1 still answers');

    // h2's agent back: it puts h2's FRR back as the controller says; h2 is reachable again.
    await world.startAgent('h2');
    await waitForProbe(world.client, 'tcp', h2.address, 443, 'connected', 30_000, 500);
    t.same(await acceptedFrom(tor1, h2.torPort), [`${h2.address}/32`, `${h2.address6}/128`].sort(), 'h2 repaired by its agent: its own addresses again');
  });

  await t.test('deploy a server at runtime, release it: reachable through both ToRs, then gone, its address free only after both applied', async (t) => {
    const started = performance.now();
    const h5 = await world.deployHost({ id: 'h5', subnetId: 'a-web', catalog: 'standard', asn: 65105, port: 'swp5' });
    const agentUp = performance.now();
    await waitFor('h5 reachable from the client through both ToRs', async () => {
      const r = await fibRoute(world.client, `${h5.address}/32`);
      return r && r.nexthops.length === 2 ? r : undefined;
    }, { timeoutMs: 30_000, intervalMs: 100 });
    await waitForProbe(world.client, 'tcp', h5.address, 443, 'connected', 10_000, 100);
    t.comment(`h5 created -> agent started ${(agentUp - started).toFixed(0)} ms -> reachable through both ToRs ${(performance.now() - agentUp).toFixed(0)} ms later`);
    t.pass('h5 is reachable from the client over both ToRs (ECMP)');

    // tor2's agent away: the release cannot end before tor2 has applied it too.
    await world.stopTorAgent('tor2');
    await world.releaseHost('h5');
    // tor1 may still reach h5's /32 through the fabric (the client learns it from tor2 and passes it on), never from swp5.
    const viaPort = async (frr: Frr) => { const r = await fibRoute(frr.ns, `${h5.address}/32`); return [r?.dev, ...(r?.nexthops.map((n) => n.dev) ?? [])].includes('swp5'); };
    await waitFor('h5\'s /32 no longer from swp5 on tor1', async () => (!(await viaPort(tor1)) && !/neighbor swp5 /.test(await tor1.vtysh('show running-config')) ? true : undefined), { timeoutMs: 15_000, intervalMs: 100 });
    t.pass('tor1: the session to swp5 is gone, and with it h5\'s /32 from that port');
    await waitFor('swp5 back in tor1\'s pool', async () => (/interface swp5\n description hostnet pool vlan 100\nexit/.test(await tor1.vtysh('show running-config')) ? true : undefined),
      { timeoutMs: 10_000, intervalMs: 100 });
    t.pass('tor1: swp5 is back in the pool template');
    t.ok(await viaPort(tor2), 'tor2 (its agent away) still takes h5\'s /32 from swp5: h5\'s FRR still advertises it');
    const { client: admin, metadata } = world.admin();
    const early = await admin.createHost({ host: { id: 'h6', subnetId: 'a-web', catalog: 'standard', asn: 65106, addresses: [`${h5.address}/32`] } }, { metadata }).then(() => undefined, (e: Error) => e.message);
    t.match(early, /still host h5's: it was released, and its switches have not all applied the release yet/, 'its address cannot be taken while tor2 still has the old session');
    await world.startTorAgent('tor2');
    await waitFor('h5\'s /32 gone from tor2', async () => ((await fibRoute(tor2.ns, `${h5.address}/32`)) ? undefined : true), { timeoutMs: 15_000, intervalMs: 100 });
    await waitFor('the client without a route to h5', async () => ((await fibRoute(world.client, `${h5.address}/32`)) ? undefined : true), { timeoutMs: 10_000, intervalMs: 100 });
    t.pass('the client has no route to h5 any more');
    const h6 = await waitFor('the address free once both switches applied the release', async () => admin.createHost({
      host: { id: 'h6', subnetId: 'a-web', catalog: 'standard', asn: 65106, addresses: [`${h5.address}/32`] },
    }, { metadata }), { timeoutMs: 15_000, intervalMs: 200 });
    t.same(h6.host?.addresses[0], `${h5.address}/32`, 'then another server may take it');
    await admin.deleteHost({ id: 'h6' }, { metadata });

    const after = await sessions(world);
    for (const [peer, s] of before) {
      if (peer.endsWith(h2.torPort)) continue; // h2's sessions were reset by its own hand edits above
      t.equal(after.get(peer)?.connectionsDropped, s.connectionsDropped, `${peer}: no session dropped by the switches' changes`);
    }
  });

  await t.test('100 prefixes flooded from one host trip maximum-prefix on that port only', async (t) => {
    await world.stopAgent('h3');
    const flood = Array.from({ length: 100 }, (_, i) => `10.77.${i}.0/24`);
    const at = await sessions(world);
    await h3.frr?.vtysh(['configure terminal', `router bgp ${h3.asn}`, 'no bgp network import-check', 'address-family ipv4 unicast',
      ...flood.map((p) => `network ${p}`), 'no neighbor private route-map HOSTNET-OUT-private out', 'exit-address-family']);
    // FRR 8.4 checks the count only as it accepts a route (docs/routing.md): the flood is first kept
    // on both ToRs (soft-reconfiguration), then h3 sends everything again, its own /32 with it (as at
    // the session's next start or refresh), and that check shuts the session. Sent again before both
    // ToRs hold the flood, the /32 could arrive first and be checked against the old count.
    await waitFor('both ToRs holding h3\'s flood', async () => {
      const held = await Promise.all([tor1, tor2].map(async (tor) => {
        const s = (await bgpPeers(tor)).get(h3.torPort);
        if (s?.state !== 'Established') return true; // already shut
        const j = await tor.vtyshJson<{ totalPrefixCounter?: number }>(`show bgp ipv4 unicast neighbors ${h3.torPort} received-routes json`);
        return (j.totalPrefixCounter ?? 0) > flood.length;
      }));
      return held.every(Boolean) ? true : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    await h3.frr?.vtysh('clear bgp ipv4 unicast * soft out');
    const tripped = await waitFor('h3\'s sessions shut on both ToRs', async () => {
      const s = await sessions(world);
      return ['tor1', 'tor2'].every((tor) => s.get(`${tor}:${h3.torPort}`)?.state !== 'Established') ? s : undefined;
    }, { timeoutMs: 20_000, intervalMs: 200 });
    t.match(await tor1.vtysh(`show bgp neighbors ${h3.torPort}`), /Maximum Number of Prefixes Reached/, 'tor1 shut h3\'s session for its prefix count');
    t.equal(tripped.get(`tor1:${h3.torPort}`)?.state, 'Idle (PfxCt)');
    for (const [peer, s] of at) {
      if (peer.endsWith(`:${h3.torPort}`)) continue;
      t.equal(tripped.get(peer)?.state, s.state, `${peer}: still ${s.state}`);
      t.equal(tripped.get(peer)?.connectionsDropped, s.connectionsDropped, `${peer}: not dropped`);
    }
    t.equal(await probe(world.client, 'tcp', h1.address, 443, { timeoutMs: 2000 }), 'connected', 'the other hosts are reachable');
    type Health = { name: string; status: string; checks: { name: string; status: string; reason: string }[] };
    const seen = await waitFor('the ToR agents reporting h3\'s port down', async () => {
      const views = await world.api<Health[]>('/api/v1/switches');
      return views.every((v) => v.status === 'degraded') ? views : undefined;
    }, { timeoutMs: 15_000, intervalMs: 200 });
    for (const v of seen) {
      t.same(v.checks.filter((c) => c.status !== 'ok').map((c) => c.name), [`bgp:${h3.torPort}`], `${v.name} is degraded by ${h3.torPort} alone (${v.checks.find((c) => c.status !== 'ok')?.reason ?? ''})`);
    }
  });
});
