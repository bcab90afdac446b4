// The routing service over fake seams: loopbacks before FRR, an unchanged
// intent skips FRR, a refused intent touches nothing, drift repaired.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { Routing } from '../../../agent/src/routing/routing.js';
import type { FrrConfigurer, ReloadDiff } from '../../../agent/src/routing/frr-apply.js';
import type { AddrInfo, LinkInfo, RtLinks } from '../../../agent/src/routing/rtnl.js';
import type { FibReader } from '../../../agent/src/routing/fib.js';
import type { FrrProcesses } from '../../../agent/src/routing/frr-daemons.js';
import { BgpListen } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { loadIntent } from '../../fixtures/goldens.js';

function fakes() {
  const calls: string[] = [];
  const links: LinkInfo[] = ['lo', 'eth0', 'eth1'].map((name, i) => ({ index: i + 1, name, up: true, carrier: true }));
  const addrs: AddrInfo[] = [];
  let watcher: (() => void) | undefined;
  const rt: RtLinks = {
    async links() { return links.map((l) => ({ ...l })); },
    async addresses() { return addrs.map((a) => ({ ...a })); },
    async createLink(name, kind) { calls.push(`create ${name} ${kind}`); links.push({ index: links.length + 1, name, up: false, carrier: false }); },
    async setUp(index) { calls.push(`up ${index}`); const l = links.find((x) => x.index === index); if (l) Object.assign(l, { up: true }); },
    async addAddress(index, address) { calls.push(`add ${index} ${address}`); addrs.push({ index, address, scope: 0 }); },
    async delAddress(index, address) { calls.push(`del ${index} ${address}`); addrs.splice(addrs.findIndex((a) => a.index === index && a.address === address), 1); },
    watch(on) { watcher = on; },
    close() { /* nothing */ },
  };
  let running = '';
  let drifted: ReloadDiff = { add: [], remove: [] };
  const frr: FrrConfigurer = {
    async diff(text) { calls.push('frr diff'); return text === running ? drifted : { add: ['x'], remove: [] }; },
    async apply(text) { calls.push('frr apply'); running = text; drifted = { add: [], remove: [] }; return { add: ['x'], remove: [] }; },
    async rebind(lines) { calls.push(`frr rebind ${lines.join(' | ')}`); },
    async putBack() { calls.push('frr putBack'); return false; },
    // FRR's printed configuration is not modelled: drift is found by diff() (frr-reload --test).
    async running() { throw new Error('not modelled'); },
  };
  return {
    rt, frr, calls, links, addrs,
    drift: (d: ReloadDiff) => { drifted = d; },
    notify: () => watcher?.(),
  };
}

void t.test('loopbacks first, then FRR; the same intent again skips FRR', async (t) => {
  const f = fakes();
  const routing = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'bridge' });
  const r = await routing.apply(loadIntent('ecmp'));
  t.same(f.calls, ['create vni0 bridge', 'up 4', 'add 4 10.1.0.10/32', 'frr apply'], 'loopback created, up and addressed before FRR is touched');
  t.equal(r.version, 'ecmp-1');
  f.calls.length = 0;
  const again = await routing.apply(loadIntent('ecmp'));
  t.same(f.calls, [], 'nothing at all the second time');
  t.same(again.frr, { add: [], remove: [] });
});

void t.test('forwarding is rendered as the kernel has it, never changed', async (t) => {
  const f = fakes();
  let kernel = { ipv4: false, ipv6: false };
  const routing = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'bridge', forwarding: async () => kernel });
  const off = await routing.render(loadIntent('ecmp'));
  t.match(off, /^no ip forwarding\nno ipv6 forwarding$/m, 'off: FRR shows "no ... forwarding"; so does the text');
  kernel = { ipv4: true, ipv6: false };
  const on = await routing.render(loadIntent('ecmp'));
  t.notMatch(on, /^no ip forwarding$/m, 'IPv4 on: no line that would turn it off');
  t.match(on, /^no ipv6 forwarding$/m);
});

void t.test('a refused intent touches nothing', async (t) => {
  const f = fakes();
  const routing = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'dummy' });
  const bad = loadIntent('ecmp');
  bad.asn = 0;
  await t.rejects(routing.apply(bad), { name: 'IntentError', field: 'asn' });
  t.same(f.calls, []);
});

void t.test('drift: found, re-applied, counted; loopback changes repaired on notification', async (t) => {
  const f = fakes();
  const events: string[] = [];
  const routing = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'dummy', onEvent: (e) => events.push(`${e.kind}: ${e.detail}`) });
  await routing.apply(loadIntent('ecmp'));
  t.same(await routing.checkFrrDrift(), { add: [], remove: [] }, 'no drift right after an apply');
  f.drift({ add: [' bgp router-id 10.1.0.10'], remove: ['router bgp 65101', ' address-family ipv4 unicast', '  no network 10.99.0.0/24', 'no route-map X permit 5'] });
  await routing.checkFrrDrift();
  t.equal(routing.frrRepairs, 1);
  t.equal(events[0], 'frr-drift-repaired: FRR\'s configuration was changed by hand; added by hand and taken out again: '
    + '"network 10.99.0.0/24" (in router bgp 65101 > address-family ipv4 unicast), "route-map X permit 5"; '
    + 'removed by hand and put back: "bgp router-id 10.1.0.10"', 'the repair says in words what was changed and what was put back');
  await routing.watch();
  f.addrs.length = 0;
  f.notify();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(routing.loopbackRepairs, 1);
  t.match(events[1], /loopback-restored: restored vni0 10\.1\.0\.10\/32/);
  t.match(events[2], /routes-reinstalled/, 'and the routes that use it as source are installed again');
  t.ok(f.calls.includes('frr rebind ip protocol bgp route-map HOSTNET-SRC'), 'by binding the source route-map again');
  f.notify();
  await new Promise((r) => setTimeout(r, 50));
  t.equal(routing.loopbackRepairs, 1, 'a notification with nothing to repair is not counted');
  routing.close();
});

void t.test('a route in flight between zebra and the kernel is not a problem; one that stays missing is', async (t) => {
  const f = fakes();
  // Each read of the FIB: what zebra selected and what the kernel has. The first read of each pair
  // catches h9's route selected by zebra but not yet in the kernel.
  let reads = 0;
  let installing = true;
  const fib: FibReader = {
    async routes(family) {
      if (family === 6) return { zebra: [], kernel: [] };
      reads++;
      const zebra = [{ prefix: '10.1.0.9/32', selected: true, installed: !installing, failed: false, tag: 0 }];
      const kernel = installing ? [] : [{ prefix: '10.1.0.9/32', src: '10.1.0.10', nexthops: [] }];
      if (installing) installing = false;
      return { zebra, kernel };
    },
    async setSource() { /* not used */ },
  };
  const routing = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'bridge', fib, routesSettleMs: 1 });
  await routing.apply(loadIntent('ecmp'));
  const settled = await routing.diagnose();
  t.same(settled.routes, [], 'installed by the second look: nothing reported');
  t.equal(reads, 2, 'looked twice');
  installing = true;
  const stuck: FibReader = { ...fib, async routes(family) { const r = await fib.routes(family); installing = true; return r; } };
  const broken = new Routing({ rt: f.rt, frr: f.frr, loopbackKind: 'bridge', fib: stuck, routesSettleMs: 1 });
  await broken.apply(loadIntent('ecmp'));
  t.same((await broken.diagnose()).routes, ['10.1.0.9/32 is not in the kernel'], 'still missing the second time: reported');
});

/**
 * FRR's processes as the restart for a new listen port sees them: `bgpd` is
 * the running one (pid undefined: down); `start` is what the start script does.
 */
class FakeProcesses implements FrrProcesses {
  bgpd: { pid: number | undefined; port: number } = { pid: 100, port: 179 };
  readonly killed: number[] = [];
  started = 0;
  constructor(private readonly o: { start: (p: FakeProcesses) => Promise<void>; restarting?: () => boolean }) {}
  up(pid: number, port: number): void { this.bgpd = { pid, port }; }
  async state() {
    const daemon = (name: string, pid: number | undefined, args: string[]) => ({ name, pid, running: pid !== undefined, args: pid === undefined ? [] : args, startedAt: 0 });
    return {
      zebra: daemon('zebra', 10, ['/usr/lib/frr/zebra']),
      bgpd: daemon('bgpd', this.bgpd.pid, ['/usr/lib/frr/bgpd', '-A', '127.0.0.1', '-p', String(this.bgpd.port)]),
      supervised: true,
    };
  }
  kill(pid: number): void { this.killed.push(pid); this.bgpd = { pid: undefined, port: this.bgpd.port }; }
  async start(): Promise<void> { this.started++; return this.o.start(this); }
  async restarting(): Promise<boolean> { return this.o.restarting?.() ?? false; }
}

async function caasRouting(processes: FrrProcesses) {
  const f = fakes();
  const dir = await mkdtemp(join(tmpdir(), 'hostnet-unit-daemons-'));
  const daemonsFile = join(dir, 'daemons');
  await writeFile(daemonsFile, 'bgpd=yes\nbgpd_options="-A 127.0.0.1 -p 179"\n');
  const events: string[] = [];
  const routing = new Routing({
    rt: f.rt, frr: f.frr, loopbackKind: 'bridge', processes, daemonsFile, onEvent: (e) => events.push(`${e.kind}: ${e.detail}`),
    bgpdRestart: { watchfrrReactsMs: 50, waitMs: 300, startMs: 300, pollMs: 10 },
  });
  const intent = loadIntent('ecmp');
  intent.bgpListen = BgpListen.PORT_20179;
  const eventually = async (n: number) => {
    for (let i = 0; i < 200 && events.length < n; i++) await new Promise((r) => setTimeout(r, 10));
    return events;
  };
  return { routing, intent, events, eventually, daemonsFile, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

void t.test('a new listen port: the agent restarts bgpd and says so once bgpd is back, not when the start script ends', async (t) => {
  const p = new FakeProcesses({ start: async (f) => { f.up(200, 20179); await new Promise(() => undefined); } });
  const c = await caasRouting(p);
  t.teardown(c.cleanup);
  await c.routing.apply(c.intent);
  t.match(await readFile(c.daemonsFile, 'utf8'), /^bgpd_options="-A 127\.0\.0\.1 -p 20179"$/m, 'the new port in the daemons file');
  t.match((await c.eventually(1))[0], /^bgpd-restarted: bgpd restarted to listen on port 20179 instead of 179 \(by the agent, before watchfrr's next poll, with the new start options\)$/,
    'the event comes while the start script still runs (loading the configuration)');
  t.same(p.killed, [100], 'the old bgpd killed');
  t.equal(p.started, 1);
});

void t.test('a new listen port while watchfrr restarts bgpd anyway: its new bgpd reads the new port; nobody kills it', async (t) => {
  const p = new FakeProcesses({ start: async () => { t.fail('the agent does not start a second bgpd'); } });
  p.bgpd = { pid: undefined, port: 179 };
  setTimeout(() => p.up(300, 20179), 50);
  const c = await caasRouting(p);
  t.teardown(c.cleanup);
  await c.routing.apply(c.intent);
  t.match((await c.eventually(1))[0], /^bgpd-restarted: bgpd came back \(started by watchfrr, which was restarting it\) with the new start options: it listens on port 20179$/);
  t.same(p.killed, []);
});

void t.test('watchfrr restarting bgpd as the agent kills it: the agent waits for watchfrr\'s bgpd', async (t) => {
  let watchfrr = false;
  const p = new FakeProcesses({ start: async () => { t.fail('the agent does not start a second bgpd'); }, restarting: () => watchfrr });
  const c = await caasRouting(p);
  t.teardown(c.cleanup);
  setTimeout(() => { watchfrr = true; }, 20);
  setTimeout(() => p.up(400, 20179), 150);
  await c.routing.apply(c.intent);
  t.match((await c.eventually(1))[0], /\(by watchfrr, with the new start options\)$/, 'waited past its own 50 ms for watchfrr\'s restart once seen');
});

void t.test('bgpd does not come back: the event says so and why', async (t) => {
  const p = new FakeProcesses({ start: async () => { throw new Error('watchfrr.sh: Failed to start bgpd!'); } });
  const c = await caasRouting(p);
  t.teardown(c.cleanup);
  await c.routing.apply(c.intent);
  t.match((await c.eventually(1))[0], /the start script failed: watchfrr\.sh: Failed to start bgpd!; bgpd is not back after \d+ s/);
});
