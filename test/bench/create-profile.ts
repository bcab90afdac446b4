// A profiling aid (not part of npm run bench): host creates through the admin
// service on an in-memory SQLite store at N hosts, to see where a create's
// time goes (node --cpu-prof dist/test/bench/create-profile.js 10000).
import { create } from '@bufbuild/protobuf';
import { Metadata } from '@grpc/grpc-js';
import { CreateHostRequestSchema } from '../../proto/gen/hostnet/v1/admin_pb.js';
import { HostSchema, SubnetSchema, TenantSchema } from '../../proto/gen/hostnet/v1/resources_pb.js';
import { openSqliteStore } from '../../controller/src/store/sqlite.js';
import { adminService } from '../../controller/src/admin/service.js';
import { Tokens } from '../../controller/src/admin/tokens.js';
import { catalog } from '../fixtures/controller-seed.js';
import type { CallContext } from '../../proto/grpc/server.js';

const n = Number(process.argv[2] ?? 10_000);
const store = openSqliteStore(':memory:');
await store.transact((tx) => {
  tx.put('tenant', 't', create(TenantSchema, { id: 't', name: 't' }));
  tx.put('subnet', 's', create(SubnetSchema, { id: 's', tenantId: 't', prefixV4: '10.0.0.0/16' }));
  tx.put('catalog', 'standard', catalog('standard'));
});
const token = 'profile-operator-token-0123';
const svc = adminService({ store, tokens: Tokens.of([{ token, caller: { role: 'operator' } }]) });
const metadata = new Metadata();
metadata.set('authorization', `Bearer ${token}`);
const ctx = { metadata, signal: new AbortController().signal } as unknown as CallContext;
const createOne = (id: string) => svc.createHost(create(CreateHostRequestSchema, { host: create(HostSchema, { id, subnetId: 's', catalog: 'standard', asn: 65000 }) }), ctx);
for (let i = 0; i < n; i++) await createOne(`h${i}`);
const started = performance.now();
for (let i = 0; i < 200; i++) await createOne(`m${i}`);
process.stdout.write(`${((performance.now() - started) / 200).toFixed(2)} ms per create at ${n} hosts\n`);
