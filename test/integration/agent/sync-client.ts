// The agent's Sync client against the real controller side (store, compile,
// AgentService) on loopback, with a recording Applier: snapshot, delta,
// refusal, the applied state saved, reconnect after the controller restarts.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { addService } from '../../../proto/grpc/index.js';
import { AgentService, type Delta, type Snapshot, SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { NetworkObjectSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { Agents } from '../../../controller/src/sync/agents.js';
import { type Applier, SyncClient, type SyncState } from '../../../agent/src/sync/client.js';
import { loadState, saveState } from '../../../agent/src/sync/state-file.js';
import { freePort, waitFor } from '../../lab/index.js';
import { seed } from '../../fixtures/controller-seed.js';
import { bind } from '../../../controller/src/server.js';
import { tempDir } from '../../fixtures/temp.js';

const log = silentLogger();


class RecordingApplier implements Applier {
  snapshot = create(SnapshotSchema, {});
  readonly seen: string[] = [];
  refuseNext = false;
  versions() { return { firewall: this.snapshot.firewall?.version ?? '', routing: this.snapshot.routing?.version ?? '' }; }
  async applySnapshot(s: Snapshot) {
    this.check('snapshot');
    this.snapshot = s;
  }
  async applyDelta(d: Delta) {
    this.check('delta');
    if (d.firewall && this.snapshot.firewall) this.snapshot = create(SnapshotSchema, { ...this.snapshot, firewall: { ...this.snapshot.firewall, version: d.firewall.version } });
    if (d.routing) this.snapshot = create(SnapshotSchema, { ...this.snapshot, routing: d.routing });
  }
  current() { return this.snapshot; }
  private check(kind: string) {
    this.seen.push(kind);
    if (this.refuseNext) {
      this.refuseNext = false;
      throw Object.assign(new Error('nft: Could not process rule: Operation not permitted'), { name: 'NftRejectedError' });
    }
  }
}

void t.test('the agent sync client against the controller', async (t) => {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: store, log, debounceMs: 20 });
  const port = await freePort();
  const serve = async (): Promise<Server> => {
    const server = new Server();
    addService(server, AgentService, agents.service(), log);
    await bind(server, `127.0.0.1:${port}`, ServerCredentials.createInsecure());
    return server;
  };
  let server = await serve();
  const dir = await tempDir(t, 'hostnet-agent-state');
  const applier = new RecordingApplier();
  const states: SyncState[] = [];
  const client = new SyncClient({
    hostId: 'host-a1', agentVersion: 'test', addresses: [`127.0.0.1:${port}`], credentials: () => credentials.createInsecure(),
    applier, log, save: (s) => saveState(dir, s), random: () => 0.1, onState: (s) => states.push(s),
  });
  t.teardown(() => { client.stop(); server.forceShutdown(); void agents.close().then(() => store.close()); });
  client.start();
  const rolloutOf = () => agents.rolloutState().find((r) => r.hostId === 'host-a1');
  await waitFor('the snapshot acknowledged', async () => (client.acked === 1 ? true : undefined), { timeoutMs: 5000 });
  t.same(applier.seen, ['snapshot']);
  await waitFor('rollout applied', async () => (rolloutOf()?.appliedVersion === agents.desiredVersion('host-a1') ? true : undefined), { timeoutMs: 2000 });
  t.equal((await loadState(dir))?.firewall?.version, applier.snapshot.firewall?.version, 'the applied state is on disk');

  await store.transact((tx) => tx.put('object', 'a-clients', create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24', '10.9.1.0/24'] })));
  await waitFor('the delta acknowledged', async () => (client.acked === 2 ? true : undefined), { timeoutMs: 5000 });
  t.same(applier.seen, ['snapshot', 'delta'], 'an object change arrives as a delta');

  applier.refuseNext = true;
  await store.transact((tx) => tx.put('object', 'a-clients', create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24'] })));
  await waitFor('the refusal', async () => (client.nacked === 1 ? true : undefined), { timeoutMs: 5000 });
  await waitFor('the NACK in rollout', async () => (rolloutOf()?.nackError ? true : undefined), { timeoutMs: 2000 });
  t.match(rolloutOf()?.nackError, { reason: 'NftRejectedError', message: /Operation not permitted/ }, 'the agent\'s error reaches rollout');

  // The controller goes away and comes back: the client backs off and resyncs with its versions.
  server.forceShutdown();
  await waitFor('backoff', async () => (client.status === 'backoff' ? true : undefined), { timeoutMs: 5000 });
  t.ok(states.includes('backoff'), 'the client backs off');
  server = await serve();
  await waitFor('streaming again', async () => (client.status === 'streaming' ? true : undefined), { timeoutMs: 10_000 });
  await waitFor('caught up', async () => (applier.versions().firewall === agents.desiredVersion('host-a1')?.split('.')[0] ? true : undefined), { timeoutMs: 5000 });
  t.pass('after the restart the agent catches up with the desired state');
  client.stop();
  t.equal(client.status, 'stopped');
});
