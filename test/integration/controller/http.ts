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
import { Tokens } from '../../../controller/src/admin/tokens.js';

const OPERATOR_TOKEN = 'operator-token-0123456789';
const TENANT_B_TOKEN = 'tenant-b-token-0123456789';
import { bind } from '../../../controller/src/server.js';

const log = silentLogger();

void t.test('dashboard API', async (t) => {
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: store, log });
  let now = new Date();
  const tokens = Tokens.of([{ token: OPERATOR_TOKEN, caller: { role: 'operator' } }, { token: TENANT_B_TOKEN, caller: { role: 'tenant-admin', tenant: 'tenant-b' } }]);
  const http = httpServer({ agents, tokens, log, revision: () => store.revision(), heartbeatSeconds: 10, now: () => now });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', () => r()));
  const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  const grpc = new Server();
  addService(grpc, AgentService, agents.service(), log);
  const port = await bind(grpc, '127.0.0.1:0', ServerCredentials.createInsecure());
  const client = createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure());
  t.teardown(() => { client.close(); grpc.forceShutdown(); http.close(); void agents.close().then(() => store.close()); });
  const get = async (path: string, token: string | null = OPERATOR_TOKEN) => {
    const r = await fetch(`${base}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
    return { status: r.status, type: r.headers.get('content-type'), body: await r.text(), auth: r.headers.get('www-authenticate') };
  };

  // The API answers a token's caller only; /healthz and /metrics stay open.
  const none = await get('/api/v1/hosts', null);
  t.match(none, { status: 401, auth: /^Bearer/ }, 'no token: 401');
  t.match(JSON.parse(none.body), { error: /missing "authorization: Bearer TOKEN"/ }, 'saying what is missing');
  t.match(JSON.parse((await get('/api/v1/rollout', 'not-a-known-token-at-all')).body), { error: 'unknown token' }, 'an unknown token: 401');
  t.same(JSON.parse((await get('/api/v1/hosts', TENANT_B_TOKEN)).body), [], 'tenant B sees none of tenant A\'s hosts');
  t.equal((await get('/api/v1/hosts/host-a1', TENANT_B_TOKEN)).status, 404, 'and tenant A\'s host is not found for it');
  t.same(JSON.parse((await get('/api/v1/rollout', TENANT_B_TOKEN)).body), [], 'nor in the rollout');
  t.equal((await get('/healthz', null)).status, 200, '/healthz needs no token');
  t.equal((await get('/metrics', null)).status, 200, 'nor /metrics');

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

  // The dashboard's additions: the summary, the host list's filters and pages, the page itself.
  t.match(JSON.parse((await get('/api/v1/summary')).body), {
    revision: store.revision(), hosts: 1, status: { ok: 0, stale: 1 }, disconnected: 0, viewer: { role: 'operator' },
    rollout: { applied: 1, pending: 0, refused: 0, reasons: [] },
  }, 'the summary counts what the list shows');
  t.match(JSON.parse((await get('/api/v1/summary', TENANT_B_TOKEN)).body), { hosts: 0, viewer: { role: 'tenant-admin', tenant: 'tenant-b' } }, 'a tenant\'s summary counts its hosts only');
  const stale = await fetch(`${base}/api/v1/hosts?status=stale,failed&limit=10`, { headers: { authorization: `Bearer ${OPERATOR_TOKEN}` } });
  t.equal(stale.headers.get('x-total-count'), '1', 'the total of the filtered list in x-total-count');
  t.match(await stale.json(), [{ id: 'host-a1', rollout: 'applied', sessions: [], checks: [{ name: 'bgp:eth1', since: null }] }]);
  t.same(JSON.parse((await get('/api/v1/hosts?status=ok')).body), [], 'a filter that matches nothing: an empty page');
  const bad = await get('/api/v1/hosts?limit=5000');
  t.same([bad.status, JSON.parse(bad.body)], [400, { error: 'query parameter "limit": "5000" is not an integer from 1 to 1000' }], 'a bad parameter: 400 naming it');
  t.equal((await get('/api/v1/hosts?limit=5000', null)).status, 401, 'the token is checked first');
  const page = await fetch(`${base}/`);
  t.equal(page.status, 200, 'the page needs no token (it asks for one)');
  t.match(page.headers.get('content-security-policy'), /default-src 'none'/, 'and may load only itself');
  t.match(await page.text(), /<title>hostnet<\/title>/);
  t.equal((await fetch(`${base}/app.js`, { method: 'HEAD' })).headers.get('content-type'), 'text/javascript; charset=utf-8');
  call.end();
});
