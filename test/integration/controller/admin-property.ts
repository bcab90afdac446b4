// The controller-agent invariant, as a property: random sequences of admin
// calls (valid and invalid, creates, updates, applies and deletes, by the
// operator and two tenant admins) against the real service on a real SQLite
// store; after each call, a refused call changed nothing, and every host's
// compiled policy and intent pass the agent's own validators (what the admin
// API accepts, every agent accepts). Seeded; the seed is printed, and
// HOSTNET_PROPERTY_SEED=N replays a run.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { HostnetError } from '../../../proto/grpc/errors.js';
import type { CallContext } from '../../../proto/grpc/server.js';
import { AclSchema, type AclRule, HostSchema, NetworkCatalogSchema, NetworkObjectSchema, SubnetSchema, TenantSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { adminService } from '../../../controller/src/admin/service.js';
import { Tokens } from '../../../controller/src/admin/tokens.js';
import { compileFirewall, compileRouting } from '../../../controller/src/compile.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import type { Kind } from '../../../controller/src/store/store.js';
import { validatePolicy } from '../../../agent/src/firewall/policy.js';
import { validateIntent } from '../../../agent/src/routing/intent.js';
import { PUBLIC_POOL, dump } from '../../fixtures/controller-seed.js';

const CALLS = Number(process.env.HOSTNET_PROPERTY_CALLS ?? 5000);
const SEED = Number(process.env.HOSTNET_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));

/** mulberry32: small, seedable, good enough to pick test inputs. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKENS = { operator: 'operator-token-0123456789', a: 'tenant-a-token-0123456789', b: 'tenant-b-token-0123456789' } as const;

void t.test(`random admin calls keep every host's compiled state valid for its agent (seed ${SEED}, ${CALLS} calls)`, async (t) => {
  const random = rng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const chance = (p: number): boolean => random() < p;
  const some = <T>(n: number, f: () => T): T[] => Array.from({ length: Math.floor(random() * (n + 1)) }, f);

  const store = openSqliteStore(':memory:');
  const tokens = Tokens.of([
    { token: TOKENS.operator, caller: { role: 'operator' } },
    { token: TOKENS.a, caller: { role: 'tenant-admin', tenant: 'ta' } },
    { token: TOKENS.b, caller: { role: 'tenant-admin', tenant: 'tb' } },
  ]);
  // Called directly (the gRPC edge is tested elsewhere); requests as plain objects, as the adapter hands them over.
  type Loose = Record<string, (req: unknown, ctx: CallContext) => Promise<unknown>>;
  const admin = adminService({ store, tokens, hosts: { publicPool: PUBLIC_POOL } }) as unknown as Loose;
  t.teardown(() => store.close());
  const ctx = (who: keyof typeof TOKENS): CallContext => {
    const metadata = new Metadata();
    metadata.set('authorization', `Bearer ${TOKENS[who]}`);
    return { metadata, signal: new AbortController().signal, call: undefined as never };
  };

  // Small universes, so that calls collide: the same ids, overlapping prefixes, references to what was just deleted.
  // Each field is usually valid (so that a world gets built) and sometimes not.
  const good = <T>(valid: readonly T[], bad: readonly T[], p = 0.9): T => (chance(p) || bad.length === 0 ? pick(valid) : pick(bad));
  const tenants = ['ta', 'tb'];
  const subnetIds = ['s1', 's2', 's3', 's4'];
  const catalogs = ['c1', 'c2', 'c3'];
  const hostIds = ['h1', 'h2', 'h3', 'h4', 'h5', 'h6'];
  const objectIds = ['o1', 'o2', 'o3'];
  const v4 = ['10.1.0.0/24', '10.2.0.0/24', '10.3.0.0/29', '10.4.0.0/16', '10.1.0.0/25'];
  const badV4 = ['10.5.0.1/24', '10.6.0.0/31', '0.0.0.0/0', '2001:db8::/64'];
  const v6 = ['', '2001:db8:1::/64', '2001:db8:2::/64', '2001:db8:3::/120', '2001:db8:1::/48'];
  const badV6 = ['::/0', 'fe80::1/10', '10.0.0.0/8'];
  const hostAddr = ['10.1.0.5/32', '10.1.0.200/32', '10.2.0.7/32', '10.3.0.1/32', '10.4.3.3/32', '2001:db8:1::5/128', '2001:db8:2::9/128'];
  const badAddr = ['10.1.0.5/24', '192.0.2.1/32', '2001:db8:9::1/128'];
  const prefixes = ['10.9.0.0/24', '2001:db8:9::/48', '0.0.0.0/0', '10.0.0.0/8', '10.8.0.0/16'];
  const badPrefixes = ['10.9.0.1/24', 'nonsense', '10.8.0.0'];
  const ifnames = ['eth0', 'eth1', 'eth2', 'eth3'];
  const badIfnames = ['vni0', 'bad name', 'a-very-long-interface-name'];

  const revisionOf = (kind: Kind, key: string): bigint => {
    const found = store.get(kind, key);
    if (!found) return pick([0n, 1n]);
    return chance(0.9) ? BigInt(found.revision) : pick([0n, BigInt(found.revision) - 1n, 999n]);
  };
  const tenantOf = (): string => good(tenants, ['nope', 'tc']);
  const tenant = () => create(TenantSchema, { id: good(tenants, ['tc', 'Bad']), name: good(['A', 'B'], ['x\u0000y']) });
  const subnet = () => create(SubnetSchema, {
    id: good(subnetIds, ['S5']), tenantId: tenantOf(), name: 'n', prefixV4: good(v4, badV4), prefixV6: good(v6, badV6),
  });
  const network = (name: string, uplinks: string[]) => ({
    name, loopback: good([name === 'private' ? 'vni0' : 'vni1'], ['vni0', 'eth0']),
    uplinks: chance(0.9) ? uplinks : some(3, () => good(ifnames, badIfnames, 0.5)),
    acceptedPrefixes: chance(0.95) ? [good(prefixes, [])] : some(2, () => good(prefixes, badPrefixes)),
    routeTag: good([name === 'private' ? 100 : 200], [0, 100]),
  });
  const catalog = () => create(NetworkCatalogSchema, {
    name: good(catalogs, ['C4']),
    networks: chance(0.6) ? [network('private', ['eth0', 'eth1'])] : [network('private', ['eth0', 'eth1']), network(good(['public'], ['private', 'other']), ['eth2', 'eth3'])],
    bgpListen: good([1, 2, 3], [0, 9]), multipath: good([1, 2], [0, 5]), bfd: chance(0.3),
  });
  const host = () => create(HostSchema, {
    id: good(hostIds, ['H7', '-x']), subnetId: good(subnetIds, ['nope']), catalog: good(catalogs, ['nope']), asn: good([65001, 65002, 4294967295], [0]),
    addresses: chance(0.6) ? [] : some(2, () => good(hostAddr, badAddr)),
    publicAddresses: chance(0.8) ? [] : some(2, () => good(['198.51.100.3/32', '198.51.100.9/32'], ['203.0.113.1/32', '2001:db8::1/128'])),
    uplinks: chance(0.8) ? [] : some(2, () => good(ifnames, badIfnames)),
  });
  const object = () => create(NetworkObjectSchema, { id: good(objectIds, ['web-', 'O4']), tenantId: tenantOf(), prefixes: some(3, () => good(prefixes, badPrefixes)) });
  const rule = (i: number): AclRule => create(AclSchema, { rules: [{
    id: good([`r${i}`], ['r0', '-bad']),
    action: good([1, 2], [0, 7]), protocol: good([1, 2, 3, 4, 5], [0, 99]),
    source: good([
      { kind: { case: 'any' as const, value: true } }, { kind: { case: 'objectId' as const, value: pick(objectIds) } },
      { kind: { case: 'prefix' as const, value: good(prefixes, badPrefixes) } }, { kind: { case: 'subnetId' as const, value: pick(subnetIds) } },
    ], [undefined, { kind: { case: 'any' as const, value: false } }]),
    destination: good([{ kind: { case: 'subnet' as const, value: true } }, { kind: { case: 'hosts' as const, value: { hostIds: [pick(hostIds)] } } }],
      [undefined, { kind: { case: 'subnet' as const, value: false } }, { kind: { case: 'hosts' as const, value: { hostIds: [] } } }]),
    ports: some(2, () => ({ first: good([22, 443, 1024, 65535], [0, 70000]), last: good([0, 0, 2048, 65535], [10, 65536]) })),
    comment: good(['', 'ok'], ['x'.repeat(300)]),
  }] }).rules[0] as AclRule;
  const acl = () => create(AclSchema, { subnetId: good(subnetIds, ['nope']), rules: Array.from({ length: Math.floor(random() * 4) }, (_, i) => rule(i)) });

  type Call = [string, () => Promise<unknown>];
  const call = (method: string, req: unknown, c: CallContext): Promise<unknown> => (admin[method] as Loose[string])(req, c);
  const calls = (who: keyof typeof TOKENS): Call[] => {
    const c = ctx(who);
    const withRev = <K extends Kind, V extends { revision: bigint }>(kind: K, v: V, key: string): V => { v.revision = revisionOf(kind, key); return v; };
    return [
      ['createTenant', () => call('createTenant', { tenant: tenant() }, c)],
      ['updateTenant', () => { const v = tenant(); return call('updateTenant', { tenant: withRev('tenant', v, v.id) }, c); }],
      ['deleteTenant', () => call('deleteTenant', { id: pick(tenants) }, c)],
      ['createSubnet', () => call('createSubnet', { subnet: subnet() }, c)],
      ['updateSubnet', () => { const v = subnet(); return call('updateSubnet', { subnet: withRev('subnet', v, v.id) }, c); }],
      ['deleteSubnet', () => call('deleteSubnet', { id: pick(subnetIds) }, c)],
      ['createNetworkCatalog', () => call('createNetworkCatalog', { networkCatalog: catalog() }, c)],
      ['updateNetworkCatalog', () => { const v = catalog(); return call('updateNetworkCatalog', { networkCatalog: withRev('catalog', v, v.name) }, c); }],
      ['deleteNetworkCatalog', () => call('deleteNetworkCatalog', { name: pick(catalogs) }, c)],
      ['createHost', () => call('createHost', { host: host() }, c)],
      ['updateHost', () => { const v = host(); return call('updateHost', { host: withRev('host', v, v.id) }, c); }],
      ['deleteHost', () => call('deleteHost', { id: pick(hostIds) }, c)],
      ['createNetworkObject', () => call('createNetworkObject', { networkObject: object() }, c)],
      ['updateNetworkObject', () => { const v = object(); return call('updateNetworkObject', { networkObject: withRev('object', v, v.id) }, c); }],
      ['deleteNetworkObject', () => call('deleteNetworkObject', { id: pick(objectIds) }, c)],
      ['createAcl', () => call('createAcl', { acl: acl() }, c)],
      ['updateAcl', () => { const v = acl(); return call('updateAcl', { acl: withRev('acl', v, v.subnetId) }, c); }],
      ['deleteAcl', () => call('deleteAcl', { subnetId: pick(subnetIds) }, c)],
      ['apply', () => call('apply', { resources: some(3, () => pick([
        { kind: { case: 'subnet' as const, value: subnet() } }, { kind: { case: 'networkObject' as const, value: object() } },
        { kind: { case: 'acl' as const, value: acl() } }, { kind: { case: 'host' as const, value: host() } },
        { kind: { case: 'networkCatalog' as const, value: catalog() } }, { kind: { case: 'tenant' as const, value: tenant() } },
      ])) }, c)],
    ];
  };

  // A world to start from: two tenants, a catalog, a subnet each; the random calls change it from there.
  const op = ctx('operator');
  for (const id of tenants) await call('createTenant', { tenant: create(TenantSchema, { id, name: id }) }, op);
  await call('createNetworkCatalog', { networkCatalog: create(NetworkCatalogSchema, {
    name: 'c1', networks: [{ name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 }], bgpListen: 1, multipath: 1,
  }) }, op);
  await call('createSubnet', { subnet: create(SubnetSchema, { id: 's1', tenantId: 'ta', prefixV4: '10.1.0.0/24', prefixV6: '2001:db8:1::/64' }) }, op);
  await call('createSubnet', { subnet: create(SubnetSchema, { id: 's2', tenantId: 'tb', prefixV4: '10.2.0.0/24' }) }, op);

  const problems: string[] = [];
  const counts = { accepted: 0, refused: 0, hostsChecked: 0 };
  const refusedBy = new Map<string, number>();
  for (let i = 0; i < CALLS && problems.length === 0; i++) {
    // The operator builds the world more often than tenants poke at it.
    const who = pick(['operator', 'operator', 'operator', 'a', 'b'] as const);
    // Deletes are rarer than writes, or the world would never grow.
    let [name, run] = pick(calls(who));
    while (name.startsWith('delete') && chance(0.7)) [name, run] = pick(calls(who));
    const before = dump(store);
    const err = await run().then(() => undefined, (e: unknown) => e);
    if (err === undefined) {
      counts.accepted++;
    } else {
      counts.refused++;
      if (!(err instanceof HostnetError)) problems.push(`call ${i} ${name} as ${who}: not a HostnetError: ${err instanceof Error ? err.stack ?? err.message : JSON.stringify(err)}`);
      else refusedBy.set(err.detail.reason, (refusedBy.get(err.detail.reason) ?? 0) + 1);
      if (dump(store) !== before) problems.push(`call ${i} ${name} as ${who}: refused (${(err as Error).message}) but the store changed`);
    }
    const held = new Map<string, string>();
    for (const h of store.list('host')) {
      counts.hostsChecked++;
      for (const a of [...h.value.addresses, ...h.value.publicAddresses]) {
        if (held.has(a)) problems.push(`call ${i} ${name}: ${a} held by ${held.get(a) ?? ''} and ${h.key}`);
        held.set(a, h.key);
      }
      try {
        const policy = compileFirewall(store, h.key, { publicPool: PUBLIC_POOL });
        validatePolicy(policy);
        const intent = compileRouting(store, h.key, { publicPool: PUBLIC_POOL });
        validateIntent(intent, new Set(intent.networks.flatMap((n) => n.uplinks)));
      } catch (e) {
        problems.push(`call ${i} ${name} as ${who}: host ${h.key} would be refused by its agent: ${(e as Error).message}`);
      }
    }
  }
  t.comment(`seed ${SEED}: ${counts.accepted} calls accepted, ${counts.refused} refused (${[...refusedBy].map(([r, n]) => `${r} ${n}`).join(', ')}); ${counts.hostsChecked} host compilations checked`);
  t.same(problems, [], `no invariant broken (replay with HOSTNET_PROPERTY_SEED=${SEED})`);
  t.ok(counts.accepted > CALLS / 10, 'a fair share of the calls were accepted (the generator builds a world)');
  t.ok(store.list('host').length > 0 || counts.hostsChecked > CALLS / 2, `hosts existed for much of the run (${counts.hostsChecked} checks)`);
});
