// The agent port with TLS and client certificates: a host syncs and reports
// as the host its certificate names, never as another; no certificate, no
// connection.
import t from 'tap';
import { create } from '@bufbuild/protobuf';
import { Server, ServerCredentials, credentials, status as Status } from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import { HostnetError, addService, createClient } from '../../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { Agents } from '../../../controller/src/sync/agents.js';
import { hostIdFromCertificate } from '../../../controller/src/tls-identity.js';
import { makePki } from '../../fixtures/certs.js';
import { seed } from '../../fixtures/controller-seed.js';
import { bind } from '../../../controller/src/server.js';

const log = silentLogger();

void t.test('host identity from the client certificate', async (t) => {
  const pki = await makePki();
  const store = openSqliteStore(':memory:');
  await seed(store);
  const agents = await Agents.open({ store, status: store, log, peerHostId: hostIdFromCertificate });
  const server = new Server();
  addService(server, AgentService, agents.service(), log);
  const creds = ServerCredentials.createSsl(pki.ca, [{ cert_chain: pki.server.cert, private_key: pki.server.key }], true);
  const port = await bind(server, '127.0.0.1:0', creds);
  t.teardown(() => { server.forceShutdown(); void agents.close().then(() => store.close()); });
  const clientFor = async (hostId: string | null) => {
    const c = hostId ? await pki.client(hostId) : undefined;
    return createClient(AgentService, `127.0.0.1:${port}`, c ? credentials.createSsl(pki.ca, c.key, c.cert) : credentials.createSsl(pki.ca));
  };

  const own = await clientFor('host-a1');
  const call = own.sync();
  const first = new Promise<SyncResponse>((resolve, reject) => { call.once('data', resolve); call.once('error', reject); });
  call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'host-a1' } } }));
  t.equal((await first).update.case, 'snapshot', 'the certificate\'s host syncs');
  t.equal((await own.reportHealth({ report: { hostId: 'host-a1' } })).heartbeatSeconds, 30, 'and reports');
  call.end();

  const other = await clientFor('host-x');
  const impostor = other.sync();
  const refused = new Promise<HostnetError>((resolve) => { impostor.on('data', () => undefined); impostor.once('error', (e) => resolve(HostnetError.from(e))); });
  impostor.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: 'host-a1' } } }));
  const err = await refused;
  t.equal(err.code, Status.PERMISSION_DENIED, 'another host\'s certificate cannot sync as host-a1');
  t.equal(err.detail.field, 'hello.host_id');
  const report = await other.reportHealth({ report: { hostId: 'host-a1' } }).then(() => null, (e: unknown) => e as HostnetError);
  t.equal(report?.code, Status.PERMISSION_DENIED, 'nor report as host-a1');

  const anonymous = await clientFor(null);
  const none = await anonymous.reportHealth({ report: { hostId: 'host-a1' } }, { timeoutMs: 3000 }).then(() => null, (e: unknown) => e as HostnetError);
  t.ok(none && none.code !== Status.OK, `no client certificate: no call (${none ? Status[none.code] : 'accepted'})`);
  for (const c of [own, other, anonymous]) c.close();
});
