// Controller replicas on a real 3-member etcd cluster (Debian etcd-server on
// loopback), each replica a real hostnet-controller process, agents the
// agent's own SyncClient with a recording applier. What users care about:
// a write on one replica reaches agents on the other; IPAM never hands out
// an address twice across replicas; an acknowledged write survives the etcd
// leader's death; a replica behind a compaction catches up; a dead replica's
// agents move to the survivor and its dashboard marks none stale; a replica
// cut off from etcd refuses writes and keeps its agents on what they have.
import t from 'tap';
import { mkdtemp } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { Metadata, credentials, status as Status } from '@grpc/grpc-js';
import { HostnetError, createClient, type ServiceClient } from '../../../proto/grpc/index.js';
import { AdminService } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import {
  AclSchema, Action, BgpListen, HostSchema, Multipath, NetworkCatalogSchema, NetworkObjectSchema, Protocol, SubnetSchema, TenantSchema,
} from '../../../proto/gen/hostnet/v1/resources_pb.js';
import type { HostView } from '../../../controller/src/http.js';
import { EtcdCluster, etcdStoreLine } from '../../../lab/etcd.js';
import { EtcdClient } from '../../../controller/src/store/etcd/client.js';
import { OPERATOR_TOKEN, type ControllerProcess, startController } from '../../fixtures/controller-process.js';
import { type SimAgent, simAgent } from '../../fixtures/sim-agent.js';
import { waitFor } from '../../lab/index.js';
import { tempDir } from '../../fixtures/temp.js';

type Admin = ServiceClient<typeof AdminService.method>;
const meta = new Metadata();
meta.set('authorization', `Bearer ${OPERATOR_TOKEN}`);
const PREFIX = '/replicas/';

void t.test('controller replicas on etcd', async (t) => {
  const cluster = await EtcdCluster.start(await mkdtemp(join(tmpdir(), 'hostnet-etcd-')), `hnr${process.pid}`);
  t.teardown(() => cluster.stop());
  const storeLine = (endpoints: readonly string[]) => etcdStoreLine(endpoints, { prefix: PREFIX, leaseTtl: '3s' });
  // Every replica has the same agents CA (and server certificate), as the docs say.
  const tlsDir = join(await tempDir(t, 'hostnet-replicas'), 'tls');
  const caFile = join(tlsDir, 'ca.pem');
  const replica = (name: string, endpoints = cluster.endpoints) =>
    startController(t, [`replica: ${name}`, 'agents: { heartbeat: 1s }'], { store: storeLine(endpoints), tls: { dir: tlsDir } });
  const admin = (c: ControllerProcess): Admin => {
    const client = createClient(AdminService, `127.0.0.1:${c.grpcPort}`, credentials.createSsl(readFileSync(caFile)));
    t.teardown(() => client.close());
    return client;
  };
  const hosts = async (c: ControllerProcess): Promise<HostView[]> => JSON.parse((await c.get('/api/v1/hosts')).body) as HostView[];
  const agents: SimAgent[] = [];
  t.teardown(() => { for (const a of agents) a.stop(); });

  const r1 = await replica('r1');
  const r2 = await replica('r2');
  const [a1, a2] = [admin(r1), admin(r2)];
  const addresses = [`127.0.0.1:${r1.agentPort}`, `127.0.0.1:${r2.agentPort}`];
  /** A simulated agent enrolled with a token from `via` (any replica: tokens are in the store). */
  const enrolledAgent = async (hostId: string, to: readonly string[], via: Admin, first?: number): Promise<SimAgent> => {
    const { token } = await via.createEnrollment({ hostId }, { metadata: meta });
    const agent = await simAgent(hostId, to, { caFile, token, ...(first !== undefined ? { first } : {}) });
    agents.push(agent);
    return agent;
  };

  // A tenant with a /16 for many hosts, an object every host's ACL uses, ten hosts.
  await a1.apply({ resources: [
    { kind: { case: 'tenant', value: create(TenantSchema, { id: 'tenant-a', name: 'A' }) } },
    { kind: { case: 'subnet', value: create(SubnetSchema, { id: 'a-web', tenantId: 'tenant-a', name: 'web', prefixV4: '10.1.0.0/16' }) } },
    { kind: { case: 'networkCatalog', value: create(NetworkCatalogSchema, {
      name: 'standard', bgpListen: BgpListen.PORT_179, multipath: Multipath.ECMP,
      networks: [{ name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 }],
    }) } },
    { kind: { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.9.0.0/24'] }) } },
    { kind: { case: 'acl', value: create(AclSchema, { subnetId: 'a-web', rules: [{
      id: 'web', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 443 }],
      source: { kind: { case: 'objectId', value: 'a-clients' } }, destination: { kind: { case: 'subnet', value: true } },
    }] }) } },
    ...Array.from({ length: 10 }, (_, i) => ({ kind: { case: 'host' as const, value: create(HostSchema, { id: `h${i}`, subnetId: 'a-web', catalog: 'standard', asn: 65100 + i }) } })),
  ] }, { metadata: meta });
  // Five agents start on r1, five on r2.
  // Each enrolls with a token made on the other replica than the one it enrolls with: tokens and certificates are in etcd.
  for (let i = 0; i < 10; i++) await enrolledAgent(`h${i}`, addresses, i % 2 ? a1 : a2, i % 2);
  await waitFor('every agent synced', async () => (agents.every((a) => a.recorder.updates > 0 && a.connectedTo()) ? true : undefined), { timeoutMs: 20_000 });
  const setClients = (via: Admin, prefixes: string[]) => via.apply({ resources: [
    { kind: { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes }) } },
  ] }, { metadata: meta });

  await t.test('a write on one replica reaches the agents on the other within a second', async (t) => {
    const onR2 = agents.filter((a) => a.connectedTo().endsWith(`:${r2.agentPort}`));
    t.ok(onR2.length > 0, `${onR2.length} agents on r2`);
    const started = performance.now();
    await setClients(a1, ['10.9.0.0/24', '10.9.1.0/24']);
    await waitFor('10.9.1.0/24 at every agent on r2', async () => (onR2.every((a) => a.recorder.arrived.has('10.9.1.0/24')) ? true : undefined), { timeoutMs: 5000, intervalMs: 10 });
    const worst = Math.max(...onR2.map((a) => (a.recorder.arrived.get('10.9.1.0/24') ?? Infinity) - started));
    t.comment(`write on r1 -> last agent on r2: ${worst.toFixed(0)} ms`);
    t.ok(worst < 1000, `within a second (${worst.toFixed(0)} ms)`);
    const shown = performance.now();
    await waitFor('r2 shows every host connected', async () => ((await hosts(r2)).every((h) => h.connected) ? true : undefined), { timeoutMs: 2000, intervalMs: 50 });
    t.pass(`r2's dashboard shows every host connected, on either replica (${(performance.now() - shown).toFixed(0)} ms)`);
  });

  await t.test('200 hosts created at once through both replicas: no address twice, each committed or refused clearly', async (t) => {
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => (i % 2 ? a1 : a2).createHost({
      host: create(HostSchema, { id: `c${i}`, subnetId: 'a-web', catalog: 'standard', asn: 65000 + i }),
    }, { metadata: meta })));
    const refused = results.flatMap((r) => (r.status === 'rejected' ? [HostnetError.from(r.reason)] : []));
    for (const e of refused) t.ok(e.code === Status.UNAVAILABLE && /try again/.test(e.message), `refused clearly: ${e.message}`);
    const all = (await a1.listHosts({}, { metadata: meta })).hosts;
    const created = all.filter((h) => h.id.startsWith('c'));
    t.equal(created.length, 200 - refused.length, `${created.length} committed, ${refused.length} refused`);
    const addrs = all.flatMap((h) => h.addresses);
    t.equal(new Set(addrs).size, addrs.length, `${addrs.length} addresses, none twice`);
    t.ok(refused.length < 20, 'nearly all committed');
  });

  await t.test('the etcd leader killed during 1,000 writes: every acknowledged write is there, once', async (t) => {
    const acked = new Set<string>();
    const errors: string[] = [];
    const unanswered: string[] = [];
    let killedAt = 0;
    const ackedAt: number[] = [];
    const writer = async (n: number, via: Admin) => {
      for (let i = 0; i < 125; i++) {
        const id = `w${n}-${i}`;
        for (let attempt = 0; attempt < 50; attempt++) {
          try {
            // A deadline as an operator's client has: a write the replica never answers fails here, by name, not by the suite's timeout.
            await via.createNetworkObject({ networkObject: create(NetworkObjectSchema, { id, tenantId: 'tenant-a', prefixes: [`10.${100 + n}.${i}.0/24`] }) }, { metadata: meta, timeoutMs: 30_000 });
            acked.add(id);
            ackedAt.push(performance.now());
            break;
          } catch (err) {
            const e = HostnetError.from(err);
            // A retry of a write that did land finds it there: acknowledged, and not written twice.
            if (e.code === Status.ALREADY_EXISTS) {
              acked.add(id);
              break;
            }
            errors.push(`${e.code} ${e.message.slice(0, 120)}`);
            if (e.code === Status.DEADLINE_EXCEEDED) unanswered.push(id);
            await new Promise((r) => setTimeout(r, 100));
          }
        }
      }
    };
    const writers = Array.from({ length: 8 }, (_, n) => writer(n, n % 2 ? a1 : a2));
    await waitFor('a few writes', async () => (acked.size >= 150 ? true : undefined), { timeoutMs: 30_000, intervalMs: 10 });
    const leader = await cluster.waitLeader(5000);
    await cluster.signal(leader, 'SIGKILL');
    killedAt = performance.now();
    t.comment(`killed the etcd leader ${leader} after ${acked.size} writes`);
    await Promise.all(writers);
    // The longest time without any acknowledged write, from the kill on: the election and the clients' retries.
    const after = [killedAt, ...ackedAt.filter((x) => x > killedAt)];
    const stall = Math.max(...after.slice(1).map((x, i) => x - (after[i] as number)));
    t.comment(`longest pause without an acknowledged write after the kill: ${stall.toFixed(0)} ms; ${errors.length} failed attempts retried: ${[...new Set(errors)].slice(0, 3).join(' | ')}`);
    t.ok(stall < 10_000, `writes resumed within seconds (${stall.toFixed(0)} ms)`);
    t.same(unanswered, [], 'every write answered within 30 s (committed or refused), none left hanging');
    t.equal(acked.size, 1000, 'all 1,000 writes acknowledged in the end');
    for (const [name, via] of [['r1', a1], ['r2', a2]] as const) {
      const objects = (await via.listNetworkObjects({}, { metadata: meta })).networkObjects.filter((o) => o.id.startsWith('w'));
      t.equal(objects.length, 1000, `${name} lists every acknowledged write`);
      t.equal(new Set(objects.map((o) => o.id)).size, objects.length, `${name}: none twice`);
    }
    await cluster.restart(leader);
  });

  await t.test('a replica whose watch fell behind a compaction relists and converges', async (t) => {
    const metric = async (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec((await r2.get('/metrics')).body)?.[1] ?? NaN);
    const relists = await metric('hostnet_controller_store_relists');
    const onR2 = agents.filter((a) => a.connectedTo().endsWith(`:${r2.agentPort}`));
    // r2 stops reading: etcd can hold only so many of its watch's events, then stops following it for
    // them; the history they were in is then compacted away. What etcd holds for a watcher that does
    // not read is 128 responses in its channel, 64 KB of gRPC write quota and the 64 KB HTTP/2 window:
    // with events of ~150 bytes 600 writes could all fit (a CI run where r2 never fell behind), so each
    // event carries a 1 KB description: 600 KB, twice what etcd can hold.
    r2.child.kill('SIGSTOP');
    try {
      await setClients(a1, ['10.9.0.0/24', '10.9.4.0/24']);
      const description = 'written while r2 was stopped; '.repeat(33);
      for (let i = 0; i < 600; i++) {
        await a1.createNetworkObject({ networkObject: create(NetworkObjectSchema, {
          id: `f${i}`, tenantId: 'tenant-a', prefixes: [`10.${150 + Math.floor(i / 250)}.${i % 250}.0/24`], description,
        }) }, { metadata: meta });
      }
      const etcd = new EtcdClient({ endpoints: cluster.endpoints });
      const now = Number((await etcd.range(new TextEncoder().encode('/'), undefined, { countOnly: true })).header?.revision ?? 0n);
      await etcd.compact(now);
      etcd.close();
      t.comment(`600 writes, then etcd compacted at revision ${now}, while r2 was stopped`);
    } finally {
      r2.child.kill('SIGCONT');
    }
    await waitFor('r2 relisted', async () => ((await metric('hostnet_controller_store_relists')) > relists ? true : undefined), { timeoutMs: 20_000 })
      .catch((err: Error) => { throw new Error(`${err.message}; r2's etcd log: ${r2.logTail(/etcd/).slice(-8).join('\n') || 'nothing'}`); });
    t.pass('r2 relisted: its watch had fallen behind the compaction');
    t.comment(`r2: ${r2.logTail(/etcd/).map((l) => { const e = JSON.parse(l) as { msg: string; err?: { message?: string } }; return e.err?.message ? `${e.msg} (${e.err.message})` : e.msg; }).slice(-4).join(' | ')}`);
    await waitFor('r2 lists the objects written meanwhile', async () =>
      ((await a2.listNetworkObjects({}, { metadata: meta })).networkObjects.some((o) => o.id === 'f599') ? true : undefined), { timeoutMs: 10_000 });
    await waitFor('r2\'s agents got the change made while it was behind', async () =>
      (onR2.every((a) => a.recorder.arrived.has('10.9.4.0/24')) ? true : undefined), { timeoutMs: 10_000 });
    t.pass(`r2 lists what was written meanwhile and its ${onR2.length} agents have the change made while it was behind`);
  });

  await t.test('etcd out of reach of one replica: it refuses writes and keeps its agents on what they have; back in reach, it converges', async (t) => {
    // r3 talks to one member only; that member is killed (the other two keep the quorum for r1 and r2).
    const lonely = cluster.members[2];
    if (!lonely) throw new Error('no third member');
    const r3 = await replica('r3', [lonely.endpoint]);
    const a3 = admin(r3);
    const agent = await enrolledAgent('c0', [`127.0.0.1:${r3.agentPort}`], a3);
    await waitFor('c0 on r3', async () => (agent.recorder.updates > 0 && agent.connectedTo() ? true : undefined), { timeoutMs: 10_000 });
    const version = agent.recorder.versions().firewall;
    await cluster.signal(lonely.name, 'SIGKILL');
    try {
      await waitFor('r3 not live', async () => ((await r3.get('/healthz')).status === 503 ? true : undefined), { timeoutMs: 15_000 });
      t.pass('r3\'s /healthz says 503');
      const started = performance.now();
      const err = await a3.createNetworkObject({ networkObject: create(NetworkObjectSchema, { id: 'cut', tenantId: 'tenant-a', prefixes: ['10.77.0.0/24'] }) }, { metadata: meta })
        .then(() => undefined, (e: unknown) => HostnetError.from(e));
      t.equal(err?.code, Status.UNAVAILABLE, `a write on r3: UNAVAILABLE (${err?.message ?? 'accepted!'})`);
      t.ok(performance.now() - started < 5000, 'at once, not after a long hang');
      const readErr = await a3.getNetworkObject({ id: 'a-clients' }, { metadata: meta }).then(() => undefined, (e: unknown) => HostnetError.from(e));
      t.equal(readErr?.code, Status.UNAVAILABLE, 'a read on r3: UNAVAILABLE (its snapshot may be stale)');
      // Changes made meanwhile through r1, and the history compacted.
      await setClients(a1, ['10.9.0.0/24', '10.9.3.0/24']);
      for (let i = 0; i < 20; i++) {
        await a1.createNetworkObject({ networkObject: create(NetworkObjectSchema, { id: `k${i}`, tenantId: 'tenant-a', prefixes: [`10.200.${i}.0/24`] }) }, { metadata: meta });
      }
      const etcd = new EtcdClient({ endpoints: cluster.endpoints.filter((e) => e !== lonely.endpoint) });
      const now = Number((await etcd.range(new TextEncoder().encode('/'), undefined, { countOnly: true })).header?.revision ?? 0n);
      await etcd.compact(now);
      etcd.close();
      t.comment(`compacted etcd at revision ${now} while r3 could not see it`);
      await new Promise((r) => setTimeout(r, 500));
      t.equal(agent.recorder.versions().firewall, version, 'r3\'s agent keeps the policy it has: nothing older, nothing empty');
      t.ok((await hosts(r1)).find((h) => h.id === 'c0'), 'r1 still serves');
    } finally {
      await cluster.restart(lonely.name);
    }
    await waitFor('r3 live again', async () => ((await r3.get('/healthz')).status === 200 ? true : undefined), { timeoutMs: 30_000 });
    await waitFor('r3 lists the objects written meanwhile', async () =>
      ((await a3.listNetworkObjects({}, { metadata: meta })).networkObjects.some((o) => o.id === 'k19') ? true : undefined), { timeoutMs: 10_000 });
    await waitFor('r3\'s agent catches up', async () => (agent.recorder.arrived.has('10.9.3.0/24') ? true : undefined), { timeoutMs: 20_000 });
    t.pass('back in reach: r3 serves the current state and its agent gets the change it missed');
  });

  await t.test('a host deleted through one replica: its certificate is refused on another at once', async (t) => {
    // c0 streams from r3; it is deleted through r1.
    const c0 = agents.find((a) => a.hostId === 'c0');
    if (!c0) throw new Error('no c0');
    await waitFor('c0 streaming', async () => (c0.connectedTo() ? true : undefined), { timeoutMs: 10_000 });
    const from = c0.states.length;
    const started = performance.now();
    await a1.deleteHost({ id: 'c0' }, { metadata: meta });
    const ended = await waitFor('c0\'s stream ended', async () => c0.states.slice(from).find((s) => s.state === 'backoff'), { timeoutMs: 5000, intervalMs: 10 });
    t.match(ended.detail, /certificate .* of host\/c0 is revoked/, `r3 ended c0's stream: revoked (${(ended.at - started).toFixed(0)} ms after the delete on r1)`);
    await new Promise((r) => setTimeout(r, 1500));
    t.equal(c0.connectedTo(), '', 'and takes it back nowhere');
    c0.stop();
  });

  await t.test('a replica killed: its agents move to the other, whose dashboard shows every host, none stale', async (t) => {
    const moved = agents.filter((a) => a.connectedTo().endsWith(`:${r1.agentPort}`));
    t.ok(moved.length > 0, `${moved.length} agents on r1`);
    r1.child.kill('SIGKILL');
    const killed = performance.now();
    await waitFor('r1\'s agents on r2', async () => (moved.every((a) => a.connectedTo().endsWith(`:${r2.agentPort}`)) ? true : undefined), { timeoutMs: 15_000, intervalMs: 20 });
    t.comment(`r1's ${moved.length} agents streaming from r2 ${(performance.now() - killed).toFixed(0)} ms after the kill`);
    // Watch r2's dashboard for a while: every host there, connected, never stale.
    const ids = agents.filter((a) => a.hostId.startsWith('h')).map((a) => a.hostId);
    const seenStale = new Set<string>();
    const until = performance.now() + 5000;
    let last: HostView[] = [];
    while (performance.now() < until) {
      last = await hosts(r2);
      for (const h of last) if (ids.includes(h.id) && h.status === 'stale') seenStale.add(h.id);
      await new Promise((r) => setTimeout(r, 100));
    }
    t.same([...seenStale], [], 'no host shown stale on r2 while r1\'s agents moved');
    t.same(last.filter((h) => ids.includes(h.id)).map((h) => [h.id, h.status, h.connected]), ids.map((id) => [id, 'ok', true]), 'every host ok and connected on r2');
  });
});
