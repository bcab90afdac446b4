// The ToR mode's pure parts: what it applies and refuses (a fake FRR), what
// it reports as the switch's health.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { silentLogger } from '../../../common/log.js';
import { SwitchApplier, switchHealth } from '../../../agent/src/daemon/tor.js';
import { SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { SwitchConfigSchema } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { HealthStatus } from '../../../proto/gen/hostnet/v1/health_pb.js';
import type { FrrConfigurer, ReloadDiff } from '../../../agent/src/routing/frr-apply.js';
import type { BgpSession } from '../../../agent/src/routing/bgp-state.js';

const CONF = 'frr defaults datacenter\nrouter bgp 65001\n neighbor swp1 interface remote-as 65101\n neighbor swp9 interface remote-as external\nexit\n';
const config = (name = 'tor1') => create(SwitchConfigSchema, { version: 'v1', switchName: name, frrConf: CONF });

function fakeFrr(drift: ReloadDiff = { add: [], remove: [] }) {
  const applied: string[] = [];
  const frr: FrrConfigurer = {
    diff: async () => drift,
    apply: async (text) => { applied.push(text); return { add: ['x'], remove: [] }; },
    running: async () => '',
    rebind: async () => undefined,
    putBack: async () => false,
  };
  return { frr, applied };
}

void t.test('a switch applier applies its own switch\'s configuration, and nothing else', async (t) => {
  const { frr, applied } = fakeFrr();
  const a = new SwitchApplier('tor1', frr, silentLogger());
  await t.rejects(a.applySnapshot(create(SnapshotSchema, {})), /ToR mode: it applies a switch configuration/);
  await t.rejects(a.applySnapshot(create(SnapshotSchema, { switchConfig: config('tor2') })), /switch tor2's, this is tor1/);
  await t.rejects(a.applyDelta(), /whole switch configurations only/);
  t.same(applied, [], 'nothing reached FRR');
  await a.applySnapshot(create(SnapshotSchema, { switchConfig: config() }));
  t.same(applied, [CONF]);
  t.same(a.versions(), { firewall: '', routing: '', switch: 'v1' }, 'Hello says the switch version');
  t.equal(a.current().switchConfig?.version, 'v1', 'kept for the next start');
});

void t.test('drift: a hand edit is undone; nothing when FRR runs the text', async (t) => {
  const clean = fakeFrr();
  const a = new SwitchApplier('tor1', clean.frr, silentLogger());
  t.same(await a.repair(), [], 'nothing applied yet: nothing to compare');
  await a.applySnapshot(create(SnapshotSchema, { switchConfig: config() }));
  t.same(await a.repair(), [], 'no drift');
  t.equal(clean.applied.length, 1);
  const edited = fakeFrr({ add: [], remove: ['ip prefix-list HOSTNET-swp1 seq 10 permit 10.0.0.0/8'] });
  const b = new SwitchApplier('tor1', edited.frr, silentLogger());
  await b.applySnapshot(create(SnapshotSchema, { switchConfig: config() }));
  t.same(await b.repair(), ['-ip prefix-list HOSTNET-swp1 seq 10 permit 10.0.0.0/8'], 'the hand-added line, undone');
  t.equal(edited.applied.length, 2, 'applied again');
});

void t.test('the switch\'s health', async (t) => {
  const s = (peer: string, state: string): BgpSession => ({ peer, vrf: 'default', state, remoteAs: 65101, prefixesReceived: 1, prefixesSent: 3, connectionsEstablished: 1, connectionsDropped: 0, uptimeMs: 1000 });
  t.equal(switchHealth(undefined, []).status, HealthStatus.FAILED, 'no configuration yet: failed');
  const ok = switchHealth(config(), [s('swp1', 'Established'), s('swp9', 'Established')]);
  t.equal(ok.status, HealthStatus.OK);
  t.same(ok.checks.map((c) => c.name), ['bgp:swp1', 'bgp:swp9', 'switch-config']);
  t.same(ok.sessions.map((x) => `${x.uplink}:${x.state}`), ['swp1:Established', 'swp9:Established']);
  const down = switchHealth(config(), [s('swp9', 'Established')]);
  t.equal(down.status, HealthStatus.DEGRADED, 'a host port not peering degrades the switch');
  t.same(down.checks.find((c) => c.name === 'bgp:swp1')?.reason, 'session not configured');
  t.equal(switchHealth(config(), new Error('vtysh: no socket')).status, HealthStatus.FAILED, 'FRR not answering: failed');
});
