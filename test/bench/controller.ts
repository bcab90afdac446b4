// The controller benchmark: N simulated agents (grpc-js Sync streams that
// ACK everything) against one controller on loopback; one prefix added to an
// object every host's ACL uses; time to each agent's update, bytes per agent,
// memory per agent.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create, toBinary } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials } from '@grpc/grpc-js';
import { silentLogger } from '../../common/log.js';
import { addService, createClient } from '../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse, SyncResponseSchema } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { AclSchema, Action, HostSchema, NetworkObjectSchema, Protocol, SubnetSchema, TenantSchema } from '../../proto/gen/hostnet/v1/resources_pb.js';
import { putHost } from '../fixtures/controller-seed.js';
import { openSqliteStore } from '../../controller/src/store/sqlite.js';
import { Agents } from '../../controller/src/sync/agents.js';
import { catalog } from '../fixtures/controller-seed.js';
import { bind } from '../../controller/src/server.js';

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))] ?? NaN;

export interface ControllerBench {
  agents: number;
  p50Ms: number;
  p99Ms: number;
  lastMs: number;
  deltaBytesPerAgent: number;
  snapshotBytesPerAgent: number;
  rssPerAgentKb: number;
  setupMs: number;
}

export async function controllerBench(n: number): Promise<ControllerBench> {
  const setupStart = performance.now();
  const log = silentLogger();
  const store = openSqliteStore(join(await mkdtemp(join(tmpdir(), 'hostnet-ctlbench-')), 'hostnet.db'));
  const ops = { role: 'operator' } as const;
  await store.transact((tx) => {
    tx.put('tenant', 't', create(TenantSchema, { id: 't', name: 't' }));
    tx.put('subnet', 's', create(SubnetSchema, { id: 's', tenantId: 't', prefixV4: '10.0.0.0/16' }));
    tx.put('catalog', 'standard', catalog('standard'));
    tx.put('object', 'clients', create(NetworkObjectSchema, { id: 'clients', tenantId: 't', prefixes: Array.from({ length: 200 }, (_, i) => `172.16.${i}.0/24`) }));
    tx.put('acl', 's', create(AclSchema, { subnetId: 's', rules: [
      { id: 'web', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }], source: { kind: { case: 'objectId', value: 'clients' } }, destination: { kind: { case: 'subnet', value: true } } },
    ] }));
    for (let i = 0; i < n; i++) {
      const addr = `10.0.${Math.floor((i + 1) / 256)}.${(i + 1) % 256}/32`;
      putHost(tx, create(HostSchema, { id: `h${i}`, subnetId: 's', catalog: 'standard', asn: 65000 + (i % 1000), addresses: [addr] }), ops, false);
    }
  });
  const agents = await Agents.open({ store, status: store, log, debounceMs: 50 });
  const server = new Server({ 'grpc.max_concurrent_streams': 100_000 });
  addService(server, AgentService, agents.service(), log);
  const port = await bind(server, '127.0.0.1:0', ServerCredentials.createInsecure());
  global.gc?.();
  const rssBefore = process.memoryUsage().rss;

  const perChannel = 250;
  const clients = Array.from({ length: Math.ceil(n / perChannel) }, (_, i) =>
    createClient(AgentService, `127.0.0.1:${port}`, credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1, 'grpc.channel_id': i }));
  const received: { at: number; bytes: number; version: string }[][] = Array.from({ length: n }, () => []);
  const streams = Array.from({ length: n }, (_, i) => {
    const call = (clients[Math.floor(i / perChannel)] as (typeof clients)[number]).sync();
    call.on('data', (m: SyncResponse) => {
      received[i]?.push({ at: performance.now(), bytes: toBinary(SyncResponseSchema, m).byteLength, version: m.version });
      call.write(create(SyncRequestSchema, { message: { case: 'ack', value: { version: m.version } } }));
    });
    call.on('error', () => undefined);
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: `h${i}` } } }));
    return call;
  });
  const waitAll = async (count: number): Promise<void> => {
    const until = Date.now() + 120_000;
    while (received.some((r) => r.length < count) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    if (received.some((r) => r.length < count)) throw new Error(`not every agent got update ${count}`);
  };
  await waitAll(1);
  await new Promise((r) => setTimeout(r, 500));
  global.gc?.();
  const rssAfter = process.memoryUsage().rss;
  const setupMs = performance.now() - setupStart;

  const t0 = performance.now();
  await store.transact((tx) => tx.put('object', 'clients', create(NetworkObjectSchema, {
    id: 'clients', tenantId: 't', prefixes: [...Array.from({ length: 200 }, (_, i) => `172.16.${i}.0/24`), '172.17.0.0/24'],
  })));
  await waitAll(2);
  const latencies = received.map((r) => (r[1]?.at ?? NaN) - t0);
  const deltaBytes = received.reduce((sum, r) => sum + (r[1]?.bytes ?? 0), 0) / n;
  const snapBytes = received.reduce((sum, r) => sum + (r[0]?.bytes ?? 0), 0) / n;
  for (const s of streams) s.end();
  for (const c of clients) c.close();
  server.forceShutdown();
  await agents.close();
  await store.close();
  return {
    agents: n, p50Ms: pct(latencies, 0.5), p99Ms: pct(latencies, 0.99), lastMs: Math.max(...latencies),
    deltaBytesPerAgent: deltaBytes, snapshotBytesPerAgent: snapBytes, rssPerAgentKb: (rssAfter - rssBefore) / 1024 / n, setupMs,
  };
}
