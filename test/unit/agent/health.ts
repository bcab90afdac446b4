// The agent's health checks as pure functions: which observation makes which
// check ok, degraded or failed (with what reason), the overall status, when
// a report is due, and what `hostnet-agent status` prints.
import t from 'tap';
import { HealthStatus } from '../../../proto/gen/hostnet/v1/health_pb.js';
import { type Check, HealthTracker, type Observations, evaluate, overall, sessionStatuses } from '../../../agent/src/daemon/health.js';
import { formatStatus, type StatusView } from '../../../agent/src/daemon/status-view.js';
import type { ValidIntent } from '../../../agent/src/routing/intent.js';
import type { BgpSession } from '../../../agent/src/routing/bgp-state.js';
import type { DaemonState } from '../../../agent/src/routing/frr-daemons.js';
import type { RoutingDiagnosis } from '../../../agent/src/routing/routing.js';

const INTENT: ValidIntent = {
  version: 'r1', hostId: 'h1', asn: 65101, routerId: '10.1.0.1', listenPort: 179, multipath: 'ecmp', bfd: false, primaryUplink: '',
  networks: [{ name: 'private', loopback: 'vni0', v4: ['10.1.0.1/32'], v6: [], uplinks: ['eth0', 'eth1'], acceptV4: ['10.0.0.0/8'], acceptV6: [], tag: 100 }],
};

const session = (peer: string, state = 'Established'): BgpSession => ({
  peer, vrf: 'default', state, remoteAs: 65001, prefixesReceived: 3, prefixesSent: 1, connectionsEstablished: 1, connectionsDropped: 0, uptimeMs: 5000,
});

const healthy = (): Observations => ({
  firewall: { version: 'f1', repairFailing: false, repairs: 0, warnings: [] },
  routing: { intent: INTENT, applyError: undefined },
  sessions: [session('eth0'), session('eth1')],
  advertised: new Map([['eth0', ['10.1.0.1/32']], ['eth1', ['10.1.0.1/32']]]),
  loopbacks: [],
  diagnosis: {
    processes: { zebra: daemon('zebra', 11), bgpd: daemon('bgpd', 12), supervised: true },
    uplinks: new Map([['eth0', undefined], ['eth1', undefined]]),
    routes: [], routesChecked: 4, listenMismatch: undefined,
  },
  controller: { connected: true, detail: 'ctl1:7443', refused: undefined },
});

function daemon(name: string, pid: number, running = true): DaemonState {
  return { name, pid, running, args: running ? [`/usr/lib/frr/${name}`] : [], startedAt: 0 };
}
const diagnosed = (o: Observations, d: Partial<RoutingDiagnosis>): Observations => ({ ...o, diagnosis: { ...(o.diagnosis as RoutingDiagnosis), ...d } });

const byName = (checks: Check[]) => Object.fromEntries(checks.map((c) => [c.name, c]));

void t.test('a healthy host: every check ok', async (t) => {
  const checks = evaluate(healthy());
  t.same(checks.map((c) => c.name), ['firewall', 'firewall-coexistence', 'frr', 'bgp:eth0', 'bgp:eth1', 'bgp-advertised', 'routes', 'loopbacks', 'controller']);
  t.same(checks.filter((c) => c.status !== 'ok'), []);
  t.equal(overall(checks), 'ok');
});

void t.test('each failure turns the right check, with a reason', async (t) => {
  const cases: [string, (o: Observations) => Observations, string, string, RegExp][] = [
    ['no policy yet', (o) => ({ ...o, firewall: { ...o.firewall, version: undefined } }), 'firewall', 'failed', /not protected/],
    ['repair failing', (o) => ({ ...o, firewall: { ...o.firewall, repairFailing: true } }), 'firewall', 'failed', /cannot be restored/],
    ['foreign drop chain', (o) => ({ ...o, firewall: { ...o.firewall, warnings: ['ip filter INPUT'] } }), 'firewall-coexistence', 'degraded', /ip filter INPUT/],
    ['one uplink down', (o) => ({ ...o, sessions: [session('eth0'), session('eth1', 'Active')], advertised: new Map([['eth0', ['10.1.0.1/32']]]) }), 'bgp:eth1', 'degraded', /session is Active/],
    ['both uplinks down', (o) => ({ ...o, sessions: [session('eth0', 'Idle'), session('eth1', 'Idle')], advertised: new Map() }), 'bgp:eth0', 'failed', /Idle/],
    ['no session configured', (o) => ({ ...o, sessions: [session('eth0')] }), 'bgp:eth1', 'degraded', /no session configured/],
    ['a hijack advertised', (o) => ({ ...o, advertised: new Map([['eth0', ['10.1.0.1/32', '10.9.9.9/32']], ['eth1', ['10.1.0.1/32']]]) }), 'bgp-advertised', 'degraded', /eth0 advertises \[10\.1\.0\.1\/32, 10\.9\.9\.9\/32\], intended \[10\.1\.0\.1\/32\]/],
    ['own /32 not advertised', (o) => ({ ...o, advertised: new Map([['eth0', []], ['eth1', ['10.1.0.1/32']]]) }), 'bgp-advertised', 'degraded', /eth0 advertises \[\]/],
    ['FRR not answering', (o) => ({ ...o, sessions: new Error('connect ENOENT bgpd.vty') }), 'frr', 'failed', /ENOENT/],
    ['loopback wrong', (o) => ({ ...o, loopbacks: ['vni0 lacks 10.1.0.1/32'] }), 'loopbacks', 'degraded', /vni0 lacks/],
    ['routing not applied', (o) => ({ ...o, routing: { intent: undefined, applyError: 'frr-reload failed' } }), 'routing', 'failed', /frr-reload failed/],
    ['controller away', (o) => ({ ...o, controller: { connected: false, detail: 'connection refused', refused: undefined } }), 'controller', 'degraded', /stays in force/],
    ['update refused', (o) => ({ ...o, controller: { ...o.controller, refused: 'v2: nft rejected' } }), 'controller', 'degraded', /v2: nft rejected/],
    ['bgpd died under watchfrr', (o) => diagnosed(o, { processes: { zebra: daemon('zebra', 11), bgpd: daemon('bgpd', 12, false), supervised: true } }),
      'frr', 'failed', /bgpd \(pid 12 gone\) is not running.*watchfrr restarts it/],
    ['bgpd died with nothing to restart it', (o) => diagnosed(o, { processes: { zebra: daemon('zebra', 11), bgpd: daemon('bgpd', 12, false), supervised: false } }),
      'frr', 'failed', /nothing supervises FRR here \(no watchfrr\): start FRR again/],
    ['IPv6 off on an uplink', (o) => diagnosed({ ...o, sessions: [session('eth0'), session('eth1', 'Active')], advertised: new Map([['eth0', ['10.1.0.1/32']]]) },
      { uplinks: new Map([['eth0', undefined], ['eth1', 'IPv6 is disabled on eth1 (net.ipv6.conf.eth1.disable_ipv6=1): ...']]) }),
    'bgp:eth1', 'degraded', /session is Active: IPv6 is disabled on eth1/],
    ['routes not in the kernel', (o) => diagnosed(o, { routes: ['10.200.0.1/32 is not in the kernel (zebra\'s install failed)'] }),
      'routes', 'degraded', /1 of 4 routes from the ToRs are not usable: 10\.200\.0\.1\/32 is not in the kernel/],
    ['bgpd on the wrong port', (o) => diagnosed(o, { listenMismatch: 'bgpd listens on port 179, the intent says 20179: ...' }), 'frr', 'degraded', /listens on port 179/],
  ];
  for (const [what, change, name, status, reason] of cases) {
    const checks = evaluate(change(healthy()));
    t.match(byName(checks)[name], { status, reason }, what);
    t.equal(overall(checks), status, `${what}: overall ${status}`);
  }
});

void t.test('the tracker: since, events, and when a report is due', async (t) => {
  let now = new Date('2026-11-25T10:00:00Z');
  const tr = new HealthTracker({ now: () => now, maxEvents: 2, eventTtlMs: 60_000 });
  tr.update(evaluate(healthy()));
  t.ok(tr.changed, 'the first picture is news');
  const fields = { hostId: 'h1', agentVersion: '0.1.0', firewallVersion: 'f1', routingVersion: 'r1', repairsTotal: 3, heartbeatMs: 2000 };
  const first = tr.report(fields);
  t.equal(first.status, HealthStatus.OK);
  t.equal(first.heartbeatSeconds, 2);
  t.equal(first.repairsTotal, 3n);
  t.notOk(tr.changed, 'reported');
  now = new Date('2026-11-25T10:00:05Z');
  tr.update(evaluate(healthy()));
  t.notOk(tr.changed, 'the same picture again is not news');
  tr.update(evaluate({ ...healthy(), sessions: [session('eth0'), session('eth1', 'Idle')] }));
  t.ok(tr.changed, 'a check changing status is news');
  const second = tr.report(fields);
  t.equal(second.status, HealthStatus.DEGRADED);
  const eth1 = second.checks.find((c) => c.name === 'bgp:eth1');
  t.equal(eth1?.since?.seconds, BigInt(Date.parse('2026-11-25T10:00:05Z') / 1000), 'since when it has been degraded');
  t.equal(second.checks.find((c) => c.name === 'bgp:eth0')?.since?.seconds, BigInt(Date.parse('2026-11-25T10:00:00Z') / 1000), 'unchanged checks keep their since');
  for (const kind of ['a', 'b', 'c']) tr.addEvent({ kind, detail: kind, time: now });
  t.ok(tr.changed, 'an event is news');
  t.same(tr.report(fields).events.map((e) => e.kind), ['b', 'c'], 'only the latest events are kept');
  now = new Date('2026-11-25T10:02:00Z');
  t.same(tr.current().events, [], 'and only for a while');
  tr.unreported();
  t.ok(tr.changed, 'an undelivered report makes the picture news again');
});

void t.test('the sessions per uplink in the report', async (t) => {
  const tr = new HealthTracker({});
  const fields = { hostId: 'h1', agentVersion: '0.1.0', firewallVersion: 'f1', routingVersion: 'r1', repairsTotal: 0, heartbeatMs: 2000 };
  const o = { ...healthy(), sessions: [session('eth1', 'Active')], advertised: new Map([['eth0', ['10.1.0.1/32']]]) };
  tr.update(evaluate(o));
  tr.updateSessions(sessionStatuses(o));
  t.same(tr.report(fields).sessions.map((s) => [s.uplink, s.state, s.remoteAs, s.prefixesReceived, s.advertised]), [
    ['eth0', 'not configured', 0, 0, ['10.1.0.1/32']],
    ['eth1', 'Active', 65001, 3, []],
  ], 'every uplink of the intent, sorted, with FRR\'s state; one FRR lacks says so');
  t.same(sessionStatuses({ ...o, sessions: new Error('FRR down') }), [], 'none while FRR does not answer (the checks say why)');
  t.same(sessionStatuses({ ...o, routing: { intent: undefined, applyError: undefined } }), [], 'none before an intent');
  const more = { ...o, sessions: [{ ...session('eth1', 'Active'), prefixesReceived: 9 }] };
  tr.updateSessions(sessionStatuses(more));
  t.notOk(tr.changed, 'more prefixes received is not news by itself (every host created changes them on every host)');
  tr.updateSessions(sessionStatuses({ ...more, sessions: [session('eth1')] }));
  t.ok(tr.changed, 'a session changing state is');
});

void t.test('hostnet-agent status output', async (t) => {
  const view: StatusView = {
    hostId: 'h1', agentVersion: '0.1.0', pid: 42, startedAt: '2026-11-25T10:00:00.000Z', ready: 'yes (first state from the cache)', status: 'degraded',
    firewall: { version: 'f1', repairs: 2, warnings: [] },
    routing: { version: 'r1', frrRepairs: 0, loopbackRepairs: 1, error: null },
    controller: { state: 'backoff', detail: 'connection refused', since: '2026-11-25T10:00:01.000Z', updatesApplied: 0, updatesRefused: 0, refused: null, lastReport: null, lastReportError: null, certificate: null },
    checks: [{ name: 'controller', status: 'degraded', reason: 'not connected', since: '2026-11-25T10:00:01.000Z' }],
    sessions: [session('eth0')],
    events: [{ kind: 'loopback-restored', detail: 'restored vni0 10.1.0.1/32', time: '2026-11-25T10:00:02.000Z' }],
  };
  const text = formatStatus(view);
  t.match(text, /^host h1: DEGRADED .*ready: yes \(first state from the cache\)/);
  t.match(text, /\n {2}degraded controller {12}not connected\n/);
  t.match(text, /\n {2}eth0 {6}Established {2}AS 65001 {3}up 5s {4}sent 1, received 3\n/);
  t.match(text, /recent events:\n {2}2026-11-25T10:00:02\.000Z {2}loopback-restored: restored vni0/);
  t.match(formatStatus({ ...view, sessions: { error: 'bgpd.vty: ENOENT' } }), /FRR does not answer: bgpd\.vty: ENOENT/);
  t.match(text, /\nidentity {3}no client certificate yet \(enrolling\)\n/);
  const enrolled = { ...view, controller: { ...view.controller, certificate: { serial: 'AB12', notAfter: '2026-12-02T10:00:00.000Z', renewAt: '2026-11-30T02:00:00.000Z', renewals: 1 } } };
  t.match(formatStatus(enrolled), /\nidentity {3}certificate AB12, expires 2026-12-02T10:00:00\.000Z, renewed at 2026-11-30T02:00:00\.000Z\n/);
});
