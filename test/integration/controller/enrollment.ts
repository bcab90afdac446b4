// Enrollment and mutual TLS against a real controller process started with
// an agents CA (as packaged): a host's one-time token and its own key give it
// a certificate; with it the host syncs, reports and renews as itself only;
// everything else (a used, expired or other host's token, a CSR for another
// name, garbage, no certificate, another CA's, an expired one, a deleted
// host's, on a resumed TLS session too) is refused with a clear status and
// stores nothing; the agent resumes its TLS session at its next connect.
import t from 'tap';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { create } from '@bufbuild/protobuf';
import { type ChannelCredentials, credentials, status as Status } from '@grpc/grpc-js';
import { createCsr, issueCertificate } from '../../../common/x509.js';
import { HostnetError, createClient } from '../../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { EnrollService } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import { DEMO_WORLD } from '../../../lab/world.js';
import { makePki } from '../../fixtures/certs.js';
import { ResumingCredentials } from '../../../agent/src/sync/resuming-credentials.js';
import { OPERATOR_TOKEN, TENANT_A_TOKEN, startController } from '../../fixtures/controller-process.js';

const failure = (p: Promise<unknown>): Promise<HostnetError | undefined> => p.then(() => undefined, (e: unknown) => HostnetError.from(e));
const newKey = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

void t.test('enrollment, mutual TLS, renewal, revocation', async (t) => {
  const c = await startController(t, [], { tls: { certificateLifetime: '1h' } });
  const tls = c.tls as { caFile: string; caKeyFile: string };
  const caPem = await readFile(tls.caFile);
  const ca = new X509Certificate(caPem);
  t.equal((await c.ctl(OPERATOR_TOKEN, 'apply', '-f', DEMO_WORLD)).code, 0, 'hostnetctl apply over server TLS');

  const agentAddress = `127.0.0.1:${c.agentPort}`;
  const enrollClient = createClient(EnrollService, agentAddress, credentials.createSsl(caPem));
  const clients: { close(): void }[] = [enrollClient];
  t.teardown(() => { for (const x of clients) x.close(); });
  const agentClient = (creds: ChannelCredentials) => {
    const client = createClient(AgentService, agentAddress, creds);
    clients.push(client);
    return client;
  };
  const tokenFor = async (host: string, ...args: string[]): Promise<string> => {
    const r = await c.ctl(OPERATOR_TOKEN, 'enroll', host, '-o', 'json', ...args);
    if (r.code !== 0) throw new Error(r.stderr);
    return (JSON.parse(r.stdout) as { token: string }).token;
  };

  await t.test('a token works once, for its host, before it expires', async (t) => {
    const out = JSON.parse((await c.ctl(OPERATOR_TOKEN, 'enroll', 'h1', '-o', 'json')).stdout) as { token: string; caFingerprint: string; expiresAt: string };
    t.match(out.token, /^hne1_[A-Za-z0-9_-]{43}$/, 'hostnetctl enroll prints the token');
    t.equal(out.caFingerprint, ca.fingerprint256, 'and the CA fingerprint');
    t.ok(Math.abs(Date.parse(out.expiresAt) - Date.now() - 3_600_000) < 60_000, 'expiring in an hour');
    const tenant = await c.ctl(TENANT_A_TOKEN, 'enroll', 'h1');
    t.match(tenant.stderr, /PERMISSION_DENIED: only operators create enrollment tokens/, 'a tenant admin cannot create one');
    t.match((await c.ctl(OPERATOR_TOKEN, 'enroll', 'nope')).stderr, /NOT_FOUND: host_id: host\/nope not found/, 'nor for an unknown host');

    const key = newKey();
    const csr = createCsr('h1', key.privateKey);
    const other = await failure(enrollClient.enroll({ hostId: 'h2', token: out.token, csrPem: createCsr('h2', key.privateKey) }));
    t.equal(other?.code, Status.UNAUTHENTICATED, 'h1\'s token does not enroll h2');
    const wrongName = await failure(enrollClient.enroll({ hostId: 'h1', token: out.token, csrPem: createCsr('h2', key.privateKey) }));
    t.match(wrongName, { code: Status.INVALID_ARGUMENT, detail: { field: 'csr_pem' } }, 'a CSR naming another host is refused');
    t.match(wrongName?.message, /names h2; it must name h1/);
    for (const [what, req, field] of [
      ['a garbage CSR', { csrPem: 'hello' }, 'csr_pem'],
      ['a 20 KB CSR', { csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(20 << 10)}\n-----END CERTIFICATE REQUEST-----\n` }, 'csr_pem'],
      ['a CSR that is not DER', { csrPem: '-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n' }, 'csr_pem'],
      ['a token of the wrong shape', { token: 'abc' }, 'token'],
      ['a host id of the wrong shape', { hostId: 'H 1' }, 'host_id'],
    ] as const) {
      const err = await failure(enrollClient.enroll(Object.assign({ hostId: 'h1', token: out.token, csrPem: csr }, req)));
      t.match(err, { code: Status.INVALID_ARGUMENT, detail: { field } }, `${what}: INVALID_ARGUMENT naming ${field} (${err?.message.slice(0, 80) ?? ''})`);
    }

    const huge = await failure(enrollClient.enroll({ hostId: 'h1', token: out.token, csrPem: 'A'.repeat(1 << 20) }));
    t.match(huge, { detail: { reason: 'MESSAGE_TOO_LARGE' } }, `a 1 MB CSR: over the controller's message limit (${huge?.message.slice(0, 60) ?? 'accepted'})`);
    const r = await enrollClient.enroll({ hostId: 'h1', token: out.token, csrPem: csr });
    const cert = new X509Certificate(r.certificate?.certificatePem ?? '');
    t.equal(cert.subjectAltName, 'DNS:h1', 'after all that, the token still works: a certificate naming h1');
    t.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), 'signed by the agents CA');
    t.ok(cert.publicKey.equals(key.publicKey), 'for the agent\'s own key');
    t.ok(Math.abs(Date.parse(cert.validTo) - Date.now() - 3_600_000) < 60_000, 'living the configured hour');
    t.equal(r.certificate?.caPem, caPem.toString(), 'with the CA');
    const again = await failure(enrollClient.enroll({ hostId: 'h1', token: out.token, csrPem: csr }));
    t.equal(again?.code, Status.UNAUTHENTICATED, 'a second use of the token is refused');
    t.match(again?.message, /not a pending enrollment token of host\/h1/);

    const short = await tokenFor('h3', '--ttl', '1s');
    await new Promise((res) => setTimeout(res, 1200));
    const expired = await failure(enrollClient.enroll({ hostId: 'h3', token: short, csrPem: createCsr('h3', key.privateKey) }));
    t.equal(expired?.code, Status.UNAUTHENTICATED, 'an expired token is refused');
    t.match(expired?.message, /expired at/);
  });

  /** Enrolls `host` with a new key; the credentials of its agent. */
  const enrolled = async (host: string) => {
    const key = newKey();
    const r = await enrollClient.enroll({ hostId: host, token: await tokenFor(host), csrPem: createCsr(host, key.privateKey) });
    const pem = r.certificate?.certificatePem ?? '';
    return { key, pem, creds: credentials.createSsl(caPem, Buffer.from(key.privateKey.export({ type: 'pkcs8', format: 'pem' })), Buffer.from(pem)) };
  };
  const openSync = (client: ReturnType<typeof agentClient>, hostId: string) => {
    const call = client.sync();
    const got: SyncResponse[] = [];
    const ended = new Promise<HostnetError>((resolve) => { call.on('error', (e) => resolve(HostnetError.from(e))); });
    call.on('data', (m: SyncResponse) => got.push(m));
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId, agentVersion: 'test' } } }));
    const first = async (): Promise<SyncResponse> => {
      for (let i = 0; i < 100 && got.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      if (!got[0]) throw new Error('no update');
      return got[0];
    };
    return { call, ended, first };
  };
  const hostView = async (id: string) => JSON.parse((await c.get(`/api/v1/hosts/${id}`)).body) as { connected?: boolean; lastReport?: unknown; status: string };

  await t.test('a certificate is its host, and only while it is accepted', async (t) => {
    const h2 = await enrolled('h2');
    const client = agentClient(h2.creds);
    const own = openSync(client, 'h2');
    t.equal((await own.first()).update.case, 'snapshot', 'h2 syncs with its certificate');
    t.equal((await client.reportHealth({ report: { hostId: 'h2' } })).heartbeatSeconds, 30, 'and reports');

    const asOther = await failure(client.reportHealth({ report: { hostId: 'h3' } }));
    t.match(asOther, { code: Status.PERMISSION_DENIED, detail: { field: 'report.host_id' } }, 'h2\'s certificate cannot report as h3');
    const syncOther = openSync(client, 'h3');
    t.match(await syncOther.ended, { code: Status.PERMISSION_DENIED, detail: { field: 'hello.host_id' } }, 'nor sync as h3');
    t.match(await hostView('h3'), { status: 'unknown' }, 'nothing recorded for h3');

    const refused = async (what: string, creds: ChannelCredentials): Promise<void> => {
      const err = await failure(agentClient(creds).reportHealth({ report: { hostId: 'h2' } }, { timeoutMs: 5000 }));
      t.equal(err?.code, Status.UNAUTHENTICATED, `${what}: UNAUTHENTICATED (${err?.message ?? 'accepted'})`);
    };
    await refused('no certificate', credentials.createSsl(caPem));
    const foreign = await makePki(t);
    const f = await foreign.client('h2');
    await refused('a certificate from another CA', credentials.createSsl(caPem, f.key, f.cert));
    const caKey = (await import('node:crypto')).createPrivateKey(await readFile(tls.caKeyFile));
    const old = newKey();
    const expiredPem = issueCertificate({
      commonName: 'h2', publicKey: old.publicKey, issuer: { certificate: ca, key: caKey }, usage: 'client', dnsNames: ['h2'],
      notBefore: new Date(Date.now() - 7_200_000), notAfter: new Date(Date.now() - 3_600_000),
    });
    await refused('an expired certificate', credentials.createSsl(caPem, Buffer.from(old.privateKey.export({ type: 'pkcs8', format: 'pem' })), Buffer.from(expiredPem)));
    const unlisted = issueCertificate({
      commonName: 'h2', publicKey: old.publicKey, issuer: { certificate: ca, key: caKey }, usage: 'client', dnsNames: ['h2'],
      notBefore: new Date(Date.now() - 60_000), notAfter: new Date(Date.now() + 3_600_000),
    });
    const forged = await failure(agentClient(credentials.createSsl(caPem, Buffer.from(old.privateKey.export({ type: 'pkcs8', format: 'pem' })), Buffer.from(unlisted)))
      .reportHealth({ report: { hostId: 'h2' } }));
    t.match(forged, { code: Status.PERMISSION_DENIED, detail: { reason: 'CERTIFICATE_REVOKED' } }, 'a CA-signed certificate the controller never issued to h2 is refused');

    // Renewal: a new certificate for a new key; the current one stays accepted until it expires.
    const next = newKey();
    const renewed = await client.renew({ csrPem: createCsr('h2', next.privateKey) });
    const nextCert = new X509Certificate(renewed.certificate?.certificatePem ?? '');
    t.equal(nextCert.subjectAltName, 'DNS:h2', 'renewed: a new certificate for h2');
    t.ok(nextCert.publicKey.equals(next.publicKey), 'for the new key');
    const nextClient = agentClient(credentials.createSsl(caPem, Buffer.from(next.privateKey.export({ type: 'pkcs8', format: 'pem' })), Buffer.from(renewed.certificate?.certificatePem ?? '')));
    t.equal((await nextClient.reportHealth({ report: { hostId: 'h2' } })).heartbeatSeconds, 30, 'the new certificate works');
    t.equal((await client.reportHealth({ report: { hostId: 'h2' } })).heartbeatSeconds, 30, 'and so does the one it renewed');
    const renewAsOther = await failure(client.renew({ csrPem: createCsr('h3', next.privateKey) }));
    t.match(renewAsOther, { code: Status.INVALID_ARGUMENT, detail: { field: 'csr_pem' } }, 'a renewal cannot name another host');

    // Deleting the host revokes its certificates: its open stream ends at once, new calls are refused.
    t.equal((await c.ctl(OPERATOR_TOKEN, 'delete', 'host', 'h2')).code, 0);
    const ended = await own.ended;
    t.match(ended, { code: Status.PERMISSION_DENIED, detail: { reason: 'CERTIFICATE_REVOKED' } }, 'the deleted host\'s stream ends: certificate revoked');
    const after = await failure(nextClient.reportHealth({ report: { hostId: 'h2' } }));
    t.match(after, { code: Status.PERMISSION_DENIED, detail: { reason: 'CERTIFICATE_REVOKED' } }, 'and its certificates are refused');
  });

  await t.test('the agent resumes its TLS session at its next connect; a certificate revoked since is refused on it all the same', async (t) => {
    const h1 = await enrolled('h1');
    // The agent's stream credentials, as agent/src/sync/identity.ts makes them.
    const creds = new ResumingCredentials(createSecureContext({ ca: caPem, key: h1.key.privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: h1.pem }));
    const report = async (): Promise<HostnetError | undefined> => {
      const client = createClient(AgentService, agentAddress, creds);
      try {
        return await failure(client.reportHealth({ report: { hostId: 'h1' } }, { timeoutMs: 5000 }));
      } finally {
        client.close();
      }
    };
    t.equal(await report(), undefined, 'first connect: h1 reports');
    t.equal(await report(), undefined, 'next connect (a new channel, as after a restart): h1 reports');
    t.same(creds.handshakes(), { resumed: 1, full: 1 }, 'the second connect resumed the session');
    await enrolled('h1');
    t.match(await report(), { code: Status.PERMISSION_DENIED, detail: { reason: 'CERTIFICATE_REVOKED' } }, 'h1 enrolled again: the earlier certificate is refused');
    t.same(creds.handshakes(), { resumed: 2, full: 1 }, 'on a resumed session too');
  });
});
