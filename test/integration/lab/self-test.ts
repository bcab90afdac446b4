// The lab harness itself: a host namespace peers BGP unnumbered with two ToR
// namespaces, routes reach the ToRs' FIBs, probes tell connected / refused /
// timed out apart, and teardown leaves nothing behind.
import t from 'tap';
import { readdir } from 'node:fs/promises';
import {
  Frr, Lab, bgpPeers, listen, ping, probe, run, torConfig, waitEstablished, waitFor, waitForRoute
} from '../../lab/index.js';

const HOST_ADDR = '10.77.0.10';

async function labLeftovers(lab: Lab): Promise<string[]> {
  const left: string[] = [];
  const ns = (await run(['ip', 'netns', 'list'])).stdout;
  for (const line of ns.split('\n')) if (line.startsWith(lab.prefix)) left.push(`netns ${line}`);
  const links = (await run(['ip', '-o', 'link', 'show'])).stdout;
  for (const line of links.split('\n')) if (line.includes(lab.prefix)) left.push(`link ${line}`);
  const procs = await run(['pgrep', '-af', lab.dir], { allowFail: true });
  for (const line of procs.stdout.split('\n').filter(Boolean)) left.push(`process ${line}`);
  const dirs = await readdir(lab.dir).catch(() => null);
  if (dirs) left.push(`dir ${lab.dir}`);
  return left;
}

void t.test('host peers unnumbered with two ToRs; probes; teardown leaves nothing', async (t) => {
  const lab = await Lab.create();
  let tornDown = false;
  t.teardown(async () => { if (!tornDown) await lab.teardown(); });

  const host = await lab.netns('host');
  const tor1 = await lab.netns('tor1');
  const tor2 = await lab.netns('tor2');
  await lab.link(host, 'eth0', tor1, 'swp1');
  await lab.link(host, 'eth1', tor2, 'swp1');
  await host.addAddress('lo', `${HOST_ADDR}/32`);
  await tor1.addAddress('lo', '10.255.0.1/32');
  await tor2.addAddress('lo', '10.255.0.2/32');

  const [hostFrr, tor1Frr, tor2Frr] = await Promise.all([
    Frr.start(host, {
      bgpPort: null,
      config: torConfig({ hostname: 'host', asn: 65101, routerId: HOST_ADDR, ports: ['eth0', 'eth1'], networks: [`${HOST_ADDR}/32`] }),
    }),
    Frr.start(tor1, { config: torConfig({ hostname: 'tor1', asn: 65001, routerId: '10.255.0.1', ports: ['swp1'], networks: ['10.255.0.1/32'] }) }),
    Frr.start(tor2, { config: torConfig({ hostname: 'tor2', asn: 65002, routerId: '10.255.0.2', ports: ['swp1'], networks: ['10.255.0.2/32'] }) }),
  ]);

  const peers = await waitEstablished(hostFrr, ['eth0', 'eth1']);
  t.equal(peers.get('eth0')?.state, 'Established', 'session to tor1 Established');
  t.equal(peers.get('eth1')?.state, 'Established', 'session to tor2 Established');
  t.equal(peers.get('eth0')?.remoteAs, 65001, 'peer on eth0 is tor1 (AS 65001)');
  await waitEstablished(tor1Frr, ['swp1']);
  await waitEstablished(tor2Frr, ['swp1']);

  const r1 = await waitForRoute(tor1, `${HOST_ADDR}/32`, { protocol: 'bgp', dev: 'swp1' });
  t.match(r1.gateway, /^fe80:/, 'tor1 reaches the host /32 via the host\'s IPv6 link-local (RFC 5549)');
  await waitForRoute(tor2, `${HOST_ADDR}/32`, { protocol: 'bgp', dev: 'swp1' });
  // The way back: replies to each ToR's loopback go over BGP routes too.
  await waitForRoute(host, '10.255.0.1/32', { protocol: 'bgp', dev: 'eth0' });
  await waitForRoute(host, '10.255.0.2/32', { protocol: 'bgp', dev: 'eth1' });

  const listener = await listen(host, 'tcp', HOST_ADDR, 8080);
  t.equal(await probe(tor1, 'tcp', HOST_ADDR, 8080), 'connected', 'TCP from tor1 to the host connects');
  t.equal(await probe(tor2, 'tcp', HOST_ADDR, 8080), 'connected', 'TCP from tor2 to the host connects');
  t.equal(await probe(tor1, 'tcp', HOST_ADDR, 8081), 'refused', 'a closed port is refused');

  const udp = await listen(host, 'udp', HOST_ADDR, 5353);
  t.equal(await probe(tor1, 'udp', HOST_ADDR, 5353), 'connected', 'UDP echo answers');
  t.ok(await ping(tor1, HOST_ADDR), 'ICMP echo answers');

  // A drop rule makes the same probe time out instead of connect.
  await host.exec(['nft', '-f', '-'], {
    stdin: 'table inet selftest {\n chain input {\n type filter hook input priority 0; policy accept;\n tcp dport 8080 drop\n }\n}\n',
  });
  const started = Date.now();
  t.equal(await probe(tor1, 'tcp', HOST_ADDR, 8080, { timeoutMs: 500 }), 'timeout', 'dropped TCP times out');
  t.ok(Date.now() - started < 5000, 'the timed-out probe returns promptly');
  await listener.stop();
  await udp.stop();

  // Routes and addresses come and go: a static route to a prefix behind
  // tor1, then removed; the uplink to tor1 cut and the session drops.
  await tor1.addAddress('lo', '10.88.0.1/32');
  await host.route('10.88.0.0/24', ['via', 'inet6', await tor1.linkLocal('swp1'), 'dev', 'eth0']);
  t.ok(await ping(host, '10.88.0.1'), 'a static route via the ToR\'s link-local works');
  await host.delRoute('10.88.0.0/24');
  t.notOk(await ping(host, '10.88.0.1'), 'and stops working once removed');
  await tor1.delAddress('lo', '10.88.0.1/32');
  await host.down('eth0');
  await waitFor('tor1 session to drop', async () => ((await bgpPeers(tor1Frr)).get('swp1')?.state !== 'Established' ? true : undefined),
    { timeoutMs: 15_000 });
  t.pass('cutting the uplink drops the session');

  await Promise.all([hostFrr.stop(), tor1Frr.stop(), tor2Frr.stop()]);
  await lab.teardown();
  tornDown = true;
  t.same(await labLeftovers(lab), [], 'no namespace, link, process or file of the run remains');
});
