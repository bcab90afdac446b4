// A ToR agent's stream, with a fake stream and a real (in-memory SQLite)
// store: the switch gets its configuration, again after a change; a released
// host's addresses stay held until every switch it was cabled to has
// acknowledged a configuration compiled after the release, however long one
// of them takes.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { silentLogger } from '../../../common/log.js';
import { SwitchSessions } from '../../../controller/src/sync/switch-sessions.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { HostSchema, SwitchSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { type SyncRequest, SyncRequestSchema, type SyncResponse } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { OPERATOR, putHost, seed } from '../../fixtures/controller-seed.js';

/** A ToR agent's side of a stream: what it was sent, and acks it sends. */
function agent() {
  const sent: SyncResponse[] = [];
  const waiting: ((r: IteratorResult<SyncRequest>) => void)[] = [];
  const queue: IteratorResult<SyncRequest>[] = [];
  const push = (r: IteratorResult<SyncRequest>) => { const w = waiting.shift(); if (w) w(r); else queue.push(r); };
  return {
    sent,
    stream: { write: (m: unknown) => { sent.push(m as SyncResponse); } },
    it: { next: () => new Promise<IteratorResult<SyncRequest>>((resolve) => { const q = queue.shift(); if (q) resolve(q); else waiting.push(resolve); }) },
    ack: (version: string) => push({ done: false, value: create(SyncRequestSchema, { message: { case: 'ack', value: { version } } }) }),
    close: () => push({ done: true, value: undefined }),
  };
}

const tick = (ms = 20) => new Promise((r) => setTimeout(r, ms));

void t.test('a released host\'s addresses are held until both its switches applied the release', async (t) => {
  const store = openSqliteStore(':memory:');
  t.teardown(() => store.close());
  await seed(store);
  await store.transact((tx) => {
    for (const [name, asn] of [['tor1', 65001], ['tor2', 65002]] as const) {
      tx.put('switch', name, create(SwitchSchema, { name, asn, routerId: `10.255.0.${asn - 65000}`, ports: ['swp1', 'swp2'], poolVlan: 100 }));
    }
    putHost(tx, create(HostSchema, { id: 'web-5', subnetId: 'a-web', catalog: 'standard', asn: 65105,
      switchPorts: [{ uplink: 'eth0', switchName: 'tor1', port: 'swp1' }, { uplink: 'eth1', switchName: 'tor2', port: 'swp1' }] }), OPERATOR, false);
  });
  const sessions = new SwitchSessions(store, silentLogger(), 0);
  const unwatch = store.watch(store.revision(), (b) => sessions.changed(b));
  t.teardown(() => { unwatch(); sessions.close(); });
  const [a1, a2] = [agent(), agent()];
  const served = [sessions.serve('tor1', '', a1.stream, a1.it), sessions.serve('tor2', '', a2.stream, a2.it)];
  t.equal(a1.sent.length, 1, 'tor1 gets its configuration at once');
  const v1 = a1.sent[0]?.version ?? '';
  t.match(a1.sent[0]?.update.case === 'snapshot' ? a1.sent[0].update.value.switchConfig?.frrConf : '', /neighbor swp1 interface remote-as 65105/);
  a1.ack(v1);
  a2.ack(a2.sent[0]?.version ?? '');
  await tick();
  t.same(sessions.states().map((s) => [s.name, s.appliedVersion === s.desiredVersion, s.connected]), [['tor1', true, true], ['tor2', true, true]]);

  // tor2's agent goes away (restarting, say) before the release.
  const old2 = a2.sent[0]?.version ?? '';
  a2.close();
  await served[1];
  const address = store.get('host', 'web-5')?.value.addresses[0] ?? '';
  await store.transact((tx) => {
    const h = tx.get('host', 'web-5');
    tx.delete('host', 'web-5');
    if (h) tx.put('released', 'web-5', h.value);
  });
  await tick();
  t.equal(a1.sent.length, 2, 'the release reaches tor1');
  t.notMatch(a1.sent[1]?.update.case === 'snapshot' ? a1.sent[1].update.value.switchConfig?.frrConf : '', /remote-as 65105/, 'without web-5\'s session');
  a1.ack(a1.sent[1]?.version ?? '');
  await tick();
  t.equal(store.hostOfAddress(address), 'released/web-5', 'tor1 applied it, tor2 not yet: the address is still held');
  t.equal(a2.sent.length, 1, 'tor2, away, got nothing');
  const b2 = agent();
  served.push(sessions.serve('tor2', old2, b2.stream, b2.it));
  t.equal(b2.sent.length, 1, 'tor2 back, saying it has the configuration from before: it gets the new one');
  b2.ack(b2.sent[0]?.version ?? '');
  await tick(50);
  t.equal(store.hostOfAddress(address), undefined, 'both applied: the address is free');
  t.notOk(store.get('released', 'web-5'), 'the release has ended');
  a1.close();
  b2.close();
  await Promise.all(served);
});
