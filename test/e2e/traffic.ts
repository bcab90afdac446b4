// The lab end to end, with real traffic: ACL and object changes through the
// AdminService reach the hosts' firewalls within 2 s and change exactly the
// probes the ACL says; a flushed ruleset is repaired within 1 s and the
// controller's dashboard shows the event; a policy the host's kernel refuses
// is NACKed, visible in rollout, and the previous rules stay in force.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Lab, freePort, probe, run, waitFor, type ProbeResult } from '../lab/index.js';
import { AclSchema, Action, NetworkObjectSchema, Protocol } from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { HostView } from '../../controller/src/http.js';
import { MANAGEMENT_PREFIX, World } from '../../lab/world.js';

const ACL_A = (ports: number[]) => create(AclSchema, {
  subnetId: 'a-web',
  rules: [
    { id: 'https', action: Action.ALLOW, protocol: Protocol.TCP, ports: ports.map((first) => ({ first })),
      source: { kind: { case: 'objectId', value: 'a-clients' } }, destination: { kind: { case: 'subnet', value: true } } },
    { id: 'ping', action: Action.ALLOW, protocol: Protocol.ICMP, source: { kind: { case: 'any', value: true } }, destination: { kind: { case: 'subnet', value: true } } },
  ],
});

void t.test('the lab: ACLs, objects, drift and refusals with real traffic', async (t) => {
  const lab = await Lab.create();
  t.teardown(() => lab.teardown());
  const world = await World.build(lab, { grpcPort: await freePort(), httpPort: await freePort(), log: (l) => t.comment(l) });
  t.teardown(() => world.close());
  const { client: admin, metadata } = world.admin();
  const h1 = world.host('h1');
  const h2 = world.host('h2');
  const h3 = world.host('h3');
  const from = (name: string) => (name === 'client' ? world.client : world.host(name).ns);
  const p = (src: string, dst: string, port: number, source?: string): Promise<ProbeResult> =>
    probe(from(src), 'tcp', world.host(dst).address, port, { timeoutMs: 400, ...(source ? { source } : {}) });
  /** Polls until the probe gives `want`; returns how long that took. */
  const until = async (src: string, dst: string, port: number, want: ProbeResult, source?: string): Promise<number> => {
    const started = Date.now();
    await waitFor(`${src} -> ${dst}:${port} ${want}`, async () => ((await p(src, dst, port, source)) === want ? true : undefined), { timeoutMs: 5000, intervalMs: 20 });
    return Date.now() - started;
  };

  await t.test('the demo ACLs hold as written', async (t) => {
    t.equal(await p('client', 'h1', 443), 'connected', 'client -> h1:443 (a-web https from a-clients)');
    t.equal(await p('client', 'h2', 443), 'connected', 'client -> h2:443');
    t.equal(await p('client', 'h1', 8080), 'timeout', 'client -> h1:8080 is dropped (default deny)');
    t.equal(await p('client', 'h3', 5432), 'timeout', 'client -> h3:5432 is dropped (not in b-app-servers)');
    t.equal(await p('h1', 'h3', 5432, h1.address), 'connected', 'h1 -> h3:5432 (b-db postgres from b-app-servers = a-web)');
  });

  await t.test('the controller\'s management prefixes reach every host\'s failsafes', async (t) => {
    for (const h of [h1, h2, h3]) {
      const ruleset = (await h.ns.exec(['nft', 'list', 'table', 'inet', 'hostnet'])).stdout;
      t.match(ruleset, /accept comment "failsafe:management"/, `${h.id} has the management failsafe`);
      t.ok(ruleset.includes(MANAGEMENT_PREFIX.split('/')[0] ?? '-'), `${h.id}'s management set holds ${MANAGEMENT_PREFIX}`);
    }
  });

  await t.test('the agent\'s /metrics pass promtool check metrics', async (t) => {
    const scrape = await h1.ns.exec([process.execPath, '-e', 'fetch("http://127.0.0.1:9464/metrics").then((r) => r.text()).then((b) => process.stdout.write(b))']);
    t.match(scrape.stdout, /^hostnet_agent_/m, 'scraped inside the host namespace');
    const lint = await run(['promtool', 'check', 'metrics'], { stdin: scrape.stdout, allowFail: true });
    t.equal(lint.code, 0, `promtool: ${lint.stdout}${lint.stderr}`.trim());
  });

  await t.test('an ACL change through the AdminService flips exactly the probes it names, within 2 s', async (t) => {
    await admin.apply({ resources: [{ kind: { case: 'acl', value: ACL_A([443, 8080]) } }] }, { metadata });
    const ms = await until('client', 'h1', 8080, 'connected');
    t.ok(ms < 2000, `client -> h1:8080 connected after ${ms} ms`);
    t.ok(await until('client', 'h2', 8080, 'connected') < 2000, 'and on the other host of the subnet');
    t.equal(await p('client', 'h1', 443), 'connected', '443 still allowed');
    t.equal(await p('client', 'h3', 5432), 'timeout', 'the other tenant\'s host is unchanged');
    await admin.apply({ resources: [{ kind: { case: 'acl', value: ACL_A([443]) } }] }, { metadata });
    t.ok(await until('client', 'h1', 8080, 'timeout') < 2000, 'removing the port closes it again within 2 s');
    t.equal(await p('client', 'h1', 443), 'connected');
  });

  await t.test('an object prefix change reaches every host of the subnets that use it', async (t) => {
    // a-clients without the client: every a-web host drops it.
    await admin.apply({ resources: [{ kind: { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.201.0.0/24'] }) } }] }, { metadata });
    t.ok(await until('client', 'h1', 443, 'timeout') < 2000, 'h1 drops the client');
    t.ok(await until('client', 'h2', 443, 'timeout') < 2000, 'h2 drops the client');
    await admin.apply({ resources: [{ kind: { case: 'networkObject', value: create(NetworkObjectSchema, { id: 'a-clients', tenantId: 'tenant-a', prefixes: ['10.200.0.0/24', '10.201.0.0/24'] }) } }] }, { metadata });
    t.ok(await until('client', 'h1', 443, 'connected') < 2000, 'h1 accepts the client again');
    t.ok(await until('client', 'h2', 443, 'connected') < 2000, 'h2 accepts the client again');
    t.equal(await p('h1', 'h3', 5432, h1.address), 'connected', 'h3 (another tenant, another object) is untouched');
  });

  await t.test('nft flush ruleset on a host is repaired within 1 s and shows on the dashboard', async (t) => {
    await h2.ns.exec(['nft', 'flush', 'ruleset']);
    const flushed = Date.now();
    // Flushed, the host accepts everything: the first probe that times out is the repair.
    await waitFor('the repair', async () => ((await h2.ns.exec(['nft', 'list', 'tables'])).stdout.includes('inet hostnet') ? true : undefined), { timeoutMs: 5000, intervalMs: 10 });
    const ms = Date.now() - flushed;
    t.ok(ms < 1000, `table inet hostnet back after ${ms} ms`);
    t.equal(await p('client', 'h2', 8080), 'timeout', 'default deny in force again');
    t.equal(await p('client', 'h2', 443), 'connected', 'and the ACL');
    const view = await waitFor('the drift event on /api/v1/hosts', async () => {
      const v = await world.api<HostView>('/api/v1/hosts/h2');
      return v.events.some((e) => e.kind === 'firewall-drift-repaired') ? v : undefined;
    }, { timeoutMs: 5000, intervalMs: 100 });
    t.match(view.events.find((e) => e.kind === 'firewall-drift-repaired')?.detail, /table inet hostnet restored/);
    const list = await world.api<HostView[]>('/api/v1/hosts');
    t.match(list.find((h) => h.id === 'h2')?.events, [{ kind: 'firewall-drift-repaired' }], 'the list shows it too');
    t.same(list.find((h) => h.id === 'h1')?.events.filter((e) => e.kind === 'firewall-drift-repaired'), [], 'only for that host');
  });

  await t.test('a policy the host\'s kernel refuses: NACK in rollout, previous rules stay', async (t) => {
    // No valid policy is refused by this kernel (nft 1.0.6 takes all the compiler emits), so the
    // refusal is the production one: an agent whose container lacks CAP_NET_ADMIN.
    await world.stopAgent('h3');
    await world.startAgent('h3', { wrap: ['setpriv', '--bounding-set', '-net_admin'] });
    // Stateless: the counters move with every packet.
    const ruleset = async () => (await h3.ns.exec(['nft', '-s', 'list', 'ruleset'])).stdout;
    const before = await ruleset();
    await admin.apply({ resources: [{ kind: { case: 'acl', value: create(AclSchema, { subnetId: 'b-db', rules: [
      { id: 'postgres', action: Action.ALLOW, protocol: Protocol.TCP, ports: [{ first: 5432 }], source: { kind: { case: 'any', value: true } }, destination: { kind: { case: 'subnet', value: true } } },
    ] }) } }] }, { metadata });
    const rollout = await waitFor('the NACK in rollout', async () => {
      const r = await admin.getRollout({}, { metadata });
      const e = r.hosts.find((h) => h.hostId === 'h3');
      return e?.nackedVersion ? e : undefined;
    }, { timeoutMs: 15_000, intervalMs: 100 });
    t.match(rollout.nackError?.message, /Operation not permitted/, `the NACK carries the kernel's answer: ${rollout.nackError?.message ?? ''}`);
    t.equal(await ruleset(), before, 'the ruleset is exactly as before');
    t.equal(await p('client', 'h3', 5432), 'timeout', 'the previous rules stay in force');
    const view = await world.api<HostView>('/api/v1/hosts/h3');
    t.match(view.nack, { version: rollout.nackedVersion }, '/api/v1/hosts shows the NACK');

    await world.stopAgent('h3');
    await world.startAgent('h3');
    t.ok(await until('client', 'h3', 5432, 'connected') < 10_000, 'a privileged agent applies the new policy');
  });
});
