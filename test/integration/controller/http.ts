// The dashboard API over real HTTP on loopback, fed by a real Sync stream and
// real health reports: host status ok / degraded / stale / unknown, rollout,
// /healthz, /metrics, 404s.
import t from 'tap';
import type { AddressInfo } from 'node:net';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { addService, createClient } from '../../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { HealthStatus } from '../../../proto/gen/hostnet/v1/health_pb.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { Agents } from '../../../controller/src/sync/agents.js';
import { httpServer } from '../../../controller/src/http.js';
import { seed } from '../../fixtures/controller-seed.js';
import { bind } from '../../../controller/src/server.js';

const log = silentLogger();

void t.test('dashboard API', async (t) => {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: store, log });
  let now = new Date();
  const http = httpServer({ agents, log, revision: () => store.revision(), heartbeatSeconds: 10, now: () => now });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const grpc = new Server();
  addService(grpc, AgentService, agents.service(), log);
  const port = await bind(grpc, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure());
  t.teardown(() => { client.close(); grpc.forceShutdown(); http.close(); void agents.close().then(() => store.close()); });
  const get = async (path: string) => { const r = await fetch(`${base}${path}`); return { status: r.status, type: r.headers.get('content-type'), body: await r.text() }; };

  const fresh = JSON.parse((await get('/api/v1/hosts')).body) as { id: string; status: string; subnet: string; tenant: string; lastSeen: null }[];
  t.match(fresh, [{ id: 'host-a1', subnet: 'a-web', tenant: 'tenant-a', status: 'unknown', lastSeen: null }], 'a host that never reported is unknown');

  const call = client.sync();
  const got: SyncResponse[] = [];
  call.on('data', (m: SyncResponse) => got.push(m));
  call.on('error', () => undefined);
  call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'host-a1' } } }));
  while (got.length === 0) await new Promise((r) => setTimeout(r, 10));
  call.write(create(SyncRequestSchema, { message: { case: 'ack', value: { version: got[0]?.version ?? '' } } }));
  await client.reportHealth({ report: { hostId: 'host-a1', status: HealthStatus.OK, heartbeatSeconds: 10, checks: [{ name: 'firewall', status: HealthStatus.OK, reason: 'as applied' }] } });
  await new Promise((r) => setTimeout(r, 50));
  const one = JSON.parse((await get('/api/v1/hosts/host-a1')).body) as Record<string, unknown>;
  t.match(one, { id: 'host-a1', status: 'ok', connected: true, desiredVersion: got[0]?.version, appliedVersion: got[0]?.version, nack: null,
    checks: [{ name: 'firewall', status: 'ok', reason: 'as applied' }] });
  t.match(one.lastSeen, /^\d{4}-\d\d-\d\dT/);

  await client.reportHealth({ report: { hostId: 'host-a1', status: HealthStatus.DEGRADED, heartbeatSeconds: 10, checks: [{ name: 'bgp:eth1', status: HealthStatus.FAILED, reason: 'session Active' }] } });
  t.match(JSON.parse((await get('/api/v1/hosts/host-a1')).body), { status: 'degraded', checks: [{ name: 'bgp:eth1', status: 'failed' }] });
  now = new Date(Date.now() + 31_000);
  t.match(JSON.parse((await get('/api/v1/hosts')).body), [{ id: 'host-a1', status: 'stale' }], 'no report for three heartbeats: stale');

  const rollout = JSON.parse((await get('/api/v1/rollout')).body) as Record<string, unknown>[];
  t.match(rollout, [{ hostId: 'host-a1', appliedVersion: got[0]?.version, nackedVersion: null, connected: true }]);
  const health = await get('/healthz');
  t.equal(health.status, 200);
  t.match(JSON.parse(health.body), { status: 'ok', revision: store.revision() });
  const metrics = await get('/metrics');
  t.match(metrics.body, /hostnet_controller_agents_connected 1/);
  t.match(metrics.body, /hostnet_controller_hosts\{status="stale"\} 1/);
  t.equal((await get('/api/v1/hosts/ghost')).status, 404);
  t.equal((await get('/nope')).status, 404);
  t.match((await get('/api/v1/hosts')).type, /application\/json/);
  await t.rejects(client.reportHealth({ report: { hostId: 'ghost' } }), /host\/ghost is not known/, 'reports for unknown hosts are refused');
  call.end();
});
