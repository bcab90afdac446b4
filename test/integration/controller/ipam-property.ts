// Addresses never move, as a property: random sequences of host creates,
// re-applies without addresses (provisioning sending the same host again),
// deletes and re-creates, in a dual-stack subnet and a catalog with a public
// network, through the real admin service on a real SQLite store. After each
// call: no live host's addresses changed since it was created, and no
// address is held twice. Seeded; HOSTNET_PROPERTY_SEED=N replays a run.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import type { CallContext } from '../../../proto/grpc/server.js';
import { HostSchema, NetworkCatalogSchema, SubnetSchema, TenantSchema } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { adminService } from '../../../controller/src/admin/service.js';
import { Tokens } from '../../../controller/src/admin/tokens.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { PUBLIC_POOL } from '../../fixtures/controller-seed.js';

const SEED = Number(process.env.HOSTNET_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
const CALLS = Number(process.env.HOSTNET_PROPERTY_CALLS ?? 2000);

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

void t.test(`IPAM: no live host's address ever changes, none is held twice (seed ${SEED}, ${CALLS} calls)`, async (t) => {
  const random = rng(SEED);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const store = openSqliteStore(':memory:');
  t.teardown(() => store.close());
  const token = 'operator-token-0123456789';
  type Loose = Record<string, (req: unknown, ctx: CallContext) => Promise<unknown>>;
  const admin = adminService({ store, tokens: Tokens.of([{ token, caller: { role: 'operator' } }]), hosts: { publicPool: PUBLIC_POOL } }) as unknown as Loose;
  const metadata = new Metadata();
  metadata.set('authorization', `Bearer ${token}`);
  const ctx: CallContext = { metadata, signal: new AbortController().signal, call: undefined as never };
  const call = (method: string, req: unknown): Promise<unknown> => (admin[method] as Loose[string])(req, ctx);

  await call('createTenant', { tenant: create(TenantSchema, { id: 'ta', name: 'A' }) });
  // A small v4 subnet (14 hosts) so that addresses are freed and taken again all the time.
  await call('createSubnet', { subnet: create(SubnetSchema, { id: 's1', tenantId: 'ta', prefixV4: '10.1.0.0/28', prefixV6: '2001:db8:1::/120' }) });
  for (const [name, pub] of [['plain', false], ['pub', true]] as const) {
    await call('createNetworkCatalog', { networkCatalog: create(NetworkCatalogSchema, {
      name, bgpListen: 1, multipath: 1,
      networks: [
        { name: 'private', loopback: 'vni0', uplinks: ['eth0', 'eth1'], acceptedPrefixes: ['10.0.0.0/8'], routeTag: 100 },
        ...(pub ? [{ name: 'public', loopback: 'vni1', uplinks: ['eth2', 'eth3'], acceptedPrefixes: ['0.0.0.0/0'], routeTag: 200 }] : []),
      ],
    }) });
  }

  const ids = Array.from({ length: 18 }, (_, i) => `h${i}`);
  /** The addresses each live host got when it was created. */
  const born = new Map<string, string>();
  const addressesOf = (id: string): string | undefined => {
    const h = store.get('host', id)?.value;
    return h ? JSON.stringify([h.addresses, h.publicAddresses]) : undefined;
  };
  const problems: string[] = [];
  const counts = { create: 0, reapply: 0, delete: 0, refused: 0 };
  for (let i = 0; i < CALLS && problems.length === 0; i++) {
    const id = pick(ids);
    const catalog = Number(id.slice(1)) % 3 === 0 ? 'pub' : 'plain';
    const op = pick(['create', 'create', 'reapply', 'reapply', 'reapply', 'delete']);
    const host = create(HostSchema, { id, subnetId: 's1', catalog, asn: 65000 + Number(id.slice(1)) });
    const ok = await (op === 'delete' ? call('deleteHost', { id })
      : op === 'create' ? call('createHost', { host })
        : call('apply', { resources: [{ kind: { case: 'host', value: host } }] })).then(() => true, () => false);
    if (!ok) counts.refused++;
    else counts[op as 'create' | 'reapply' | 'delete']++;
    if (ok && op === 'delete') born.delete(id);
    if (ok && op !== 'delete' && !born.has(id)) born.set(id, addressesOf(id) ?? '');
    const held = new Map<string, string>();
    for (const h of store.list('host')) {
      const now = addressesOf(h.key);
      if (born.get(h.key) !== now) problems.push(`call ${i} (${op} ${id}): ${h.key} moved from ${born.get(h.key) ?? '?'} to ${now ?? '?'}`);
      for (const a of [...h.value.addresses, ...h.value.publicAddresses]) {
        if (held.has(a)) problems.push(`call ${i}: ${a} held by ${held.get(a) ?? ''} and ${h.key}`);
        held.set(a, h.key);
      }
    }
  }
  t.comment(`seed ${SEED}: ${JSON.stringify(counts)}`);
  t.same(problems, [], `no address moved or held twice (replay with HOSTNET_PROPERTY_SEED=${SEED})`);
  t.ok(counts.reapply > CALLS / 5 && counts.delete > CALLS / 20, 'the run re-applied and deleted hosts often');
  t.ok(counts.refused > 0, 'and hit a full subnet (refused creates) sometimes');
});
