// The lab when a tenant breaks its host, as tenants do: each repair is done
// when traffic flows again (an outage meter probes the host the whole time),
// and each known mistake gets a check reason that names the cause and the
// fix on the controller's /api/v1/hosts/{id}, and clears once fixed.
import t from 'tap';
import { join } from 'node:path';
import { Lab, freePort, outageMeter, waitFor } from '../lab/index.js';
import type { HostView } from '../../controller/src/http.js';
import { World } from '../../lab/world.js';

void t.test('repairs and diagnoses in the lab', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), log: (l) => t.comment(l) });
  t.teardown(() => world.close());
  const h2 = world.host('h2');
  const view = () => world.api<HostView>('/api/v1/hosts/h2');
  const checkOf = async (name: string) => (await view()).checks.find((c) => c.name === name);
  /** Waits for h2's check `name` to match; returns it. */
  const check = (name: string, status: string, reason: RegExp | undefined, timeoutMs = 15_000) => waitFor(`h2 ${name} ${status}${reason ? ` ${String(reason)}` : ''}`, async () => {
    const c = await checkOf(name);
    return c?.status === status && (!reason || reason.test(c.reason)) ? c : undefined;
  }, { timeoutMs, intervalMs: 100 });
  const event = (kind: string, after: number) => waitFor(`a ${kind} event`, async () => (await view()).events.find((e) => e.kind === kind && Date.parse(e.time ?? '') >= after - 1000),
    { timeoutMs: 10_000, intervalMs: 100 });
  const outages: string[] = [];
  t.teardown(() => { t.comment(`worst outages (client -> h2:443): ${outages.join('; ')}`); });

  /** Runs `breakIt` while the client probes h2:443 every 100 ms; waits until `healed`; records the worst outage. */
  const repair = async (what: string, breakIt: () => Promise<unknown>, healed: () => Promise<unknown>): Promise<number> => {
    await world.waitAllOk(30_000);
    const meter = outageMeter(world.client, h2.address, 443);
    try {
      await new Promise((r) => setTimeout(r, 300));
      await breakIt();
      await healed();
      await new Promise((r) => setTimeout(r, 500));
    } finally {
      await meter.stop();
    }
    outages.push(`${what} ${meter.worst()} ms`);
    t.ok(meter.worst() < 5000, `${what}: traffic back, worst outage ${meter.worst()} ms (${meter.failures()} failed probes)`);
    return meter.worst();
  };

  await t.test('the vni0 address deleted: restored, and the routes that use it as source installed again', async (t) => {
    const at = Date.now();
    const agent = h2.agent;
    if (!agent) throw new Error('h2 has no agent');
    // The agent busy for a second (SIGSTOP): zebra re-installs the routes the kernel dropped with the
    // address while it is missing, and the kernel refuses them (B>r) - the case a restored address alone does not heal.
    await repair('vni0 address deleted', async () => {
      agent.child.kill('SIGSTOP');
      try {
        await h2.ns.exec(['ip', 'address', 'del', `${h2.address}/32`, 'dev', 'vni0']);
        await new Promise((r) => setTimeout(r, 1000));
      } finally {
        agent.child.kill('SIGCONT');
      }
    }, async () => {
      await check('loopbacks', 'ok', undefined);
      await check('routes', 'ok', /in the kernel, each with its loopback's source address/);
    });
    t.match((await event('loopback-restored', at)).detail, new RegExp(`restored vni0 ${h2.address.replace(/\./g, '\\.')}/32`));
    t.match((await event('routes-reinstalled', at)).detail, /routes from the ToRs the kernel lacked, or had without their source address, are installed again/);
    t.match((await h2.ns.exec(['ip', 'route', 'show', '10.200.0.1'])).stdout, new RegExp(`src ${h2.address.replace(/\./g, '\\.')}`), 'the route to the client is back, with its source');
  });

  await t.test('nft flush ruleset: the table is back, and the ACL with it', async (t) => {
    const at = Date.now();
    await repair('nft flush ruleset', () => h2.ns.exec(['nft', 'flush', 'ruleset']), () => check('firewall', 'ok', undefined));
    t.match((await event('firewall-drift-repaired', at)).detail, /table inet hostnet restored/);
  });

  await t.test('FRR edited by hand and reloaded: put back within a second, said in words', async (t) => {
    const frr = h2.frr;
    if (!frr) throw new Error('h2 has no FRR');
    let at = Date.now();
    // The tenant stops advertising its own /32 (say, by a careless edit of frr.conf) and reloads FRR.
    const conf = join(frr.dir, 'frr.conf');
    const worst = await repair('frr.conf edited and reloaded by hand', async () => {
      await h2.ns.exec(['sed', '-i', `/network ${h2.address}\\/32/d`, conf]);
      await h2.ns.exec(['python3', '/usr/lib/frr/frr-reload.py', '--reload', '--bindir', '/usr/bin', '--confdir', frr.dir, '--rundir', frr.dir, '--vty_socket', frr.dir, conf], { allowFail: true });
      at = Date.now();
    }, () => event('frr-drift-repaired', at));
    const e = await event('frr-drift-repaired', at);
    t.equal(e.detail, `FRR's configuration was changed by hand; removed by hand and put back: "network ${h2.address}/32" (in router bgp ${h2.asn} > address-family ipv4 unicast)`);
    const ms = Date.parse(e.time ?? '') - at;
    // 0.3 s here since a removed line is put back with one vtysh call (1.5-3.5 s with frr-reload, and the
    // outage up to 4.1 s under load: this test failed once on it). The periodic check
    // (every 10 s here; it also finds dead daemons, which the last subtest needs) could have come first at any
    // moment, so the time alone does not prove the command log saw it: it says the repair comes in seconds.
    t.ok(ms < 6000, `put back ${ms} ms after the tenant's reload ended (FRR's command log is followed; the periodic check runs every 10 s here)`);
    t.ok(worst < 3000, 'traffic back within a few seconds');
  });

  await t.test('a foreign table that drops: named, and cleared when it goes', async (t) => {
    const at = Date.now();
    await h2.ns.exec(['nft', '-f', '-'], { stdin: 'table ip filter {\n chain INPUT {\n  type filter hook input priority 0; policy accept;\n  tcp dport 443 drop\n }\n}\n' });
    const c = await check('firewall-coexistence', 'degraded', /table ip filter chain INPUT \(iptables\) drops in 1 rule/);
    t.match(c.reason, /remove them/, `the reason says what to do: ${c.reason}`);
    t.match((await event('foreign-drop-chain', at)).detail, /table ip filter chain INPUT/);
    await h2.ns.exec(['nft', 'delete', 'table', 'ip', 'filter']);
    await check('firewall-coexistence', 'ok', undefined, 5000);
    t.match((await event('foreign-drop-cleared', at)).detail, /table ip filter chain INPUT \(iptables\) no longer drops input/);
  });

  await t.test('IPv6 disabled on an uplink: named with the sysctl that fixes it', async (t) => {
    await h2.ns.exec(['sysctl', '-w', 'net.ipv6.conf.eth0.disable_ipv6=1']);
    const c = await check('bgp:eth0', 'degraded', /IPv6 is disabled on eth0 \(net\.ipv6\.conf\.eth0\.disable_ipv6=1\): unnumbered BGP needs its link-local address/, 30_000);
    t.match(c.reason, /sysctl -w net\.ipv6\.conf\.eth0\.disable_ipv6=0/);
    await h2.ns.exec(['sysctl', '-w', 'net.ipv6.conf.eth0.disable_ipv6=0']);
    await check('bgp:eth0', 'ok', undefined, 40_000);
  });

  await t.test('an uplink down, or without its link-local address: named', async () => {
    await h2.ns.down('eth1');
    await check('bgp:eth1', 'degraded', /eth1 is administratively down: bring it up/, 30_000);
    await h2.ns.up('eth1');
    await check('bgp:eth1', 'ok', undefined, 40_000);
    await h2.ns.exec(['ip', '-6', 'address', 'flush', 'dev', 'eth1', 'scope', 'link']);
    await check('bgp:eth1', 'degraded', /eth1 has no IPv6 link-local address/, 30_000);
    await h2.ns.down('eth1');
    await h2.ns.up('eth1');
    await check('bgp:eth1', 'ok', undefined, 40_000);
  });

  await t.test('bgpd killed where nothing supervises FRR: named, and who restarts it', async (t) => {
    const frr = h2.frr;
    if (!frr) throw new Error('h2 has no FRR');
    const at = Date.now();
    await h2.ns.exec(['pkill', '-KILL', '-F', join(frr.dir, 'bgpd.pid')]);
    const c = await check('frr', 'failed', /FRR's bgpd \(pid \d+ gone\) is not running/);
    t.match(c.reason, /nothing supervises FRR here \(no watchfrr\): start FRR again/, c.reason);
    t.match((await event('frr-daemon-down', at)).detail, /bgpd is not running; nothing supervises FRR here/, 'not taken for a hand edit');
    t.notOk((await view()).events.some((e) => e.kind === 'frr-drift-repaired' && Date.parse(e.time ?? '') >= at), 'no "changed by hand" for a dead daemon');
    await frr.stop();
    await world.startHostFrr('h2');
    await check('frr', 'ok', undefined, 30_000);
    await world.waitAllOk(60_000);
  });
});
