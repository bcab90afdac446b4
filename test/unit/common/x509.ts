// X.509 by hand, checked against OpenSSL both ways: what we issue verifies
// with `openssl verify` and reads as intended; requests OpenSSL makes read
// back here; a request that is tampered with, for another key type, asking
// for an IP address, or cut short is refused saying why.
import t from 'tap';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../../common/run.js';
import { CsrError, createCsr, issueCertificate, parseCsr, pem, unpem } from '../../../common/x509.js';
import { integer, oid, readAll, readOid, time } from '../../../common/der.js';
import { tempDir } from '../../fixtures/temp.js';

const ec = () => generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

void t.test('DER pieces', async (t) => {
  t.equal(integer(0).toString('hex'), '020100');
  t.equal(integer(128).toString('hex'), '02020080', 'a leading zero keeps 128 positive');
  t.equal(integer(Buffer.from([0, 0, 5])).toString('hex'), '020105', 'redundant zeros dropped');
  t.equal(oid('1.2.840.10045.4.3.2').toString('hex'), '06082a8648ce3d040302');
  t.equal(readOid(readAll(oid('2.5.29.17'))), '2.5.29.17');
  t.equal(time(new Date('2049-12-31T23:59:59Z')).toString('ascii', 2), '491231235959Z', 'UTCTime up to 2049');
  t.equal(time(new Date('2050-01-01T00:00:00Z')).toString('ascii', 2), '20500101000000Z', 'GeneralizedTime from 2050');
  t.throws(() => readAll(Buffer.from('3005020101', 'hex')), /truncated/);
  t.throws(() => readAll(Buffer.from('30810100', 'hex')), /shortest form/);
});

void t.test('issued certificates verify with OpenSSL', async (t) => {
  const dir = await tempDir(t, 'hostnet-x509');
  const caKey = ec();
  const now = new Date();
  const caPem = issueCertificate({ commonName: 'test CA', publicKey: caKey.publicKey, selfKey: caKey.privateKey, usage: 'ca', notBefore: now, notAfter: new Date(now.getTime() + 86_400_000) });
  const ca = new X509Certificate(caPem);
  t.ok(ca.ca, 'the CA certificate says CA:TRUE');
  const agent = ec();
  const leafPem = issueCertificate({
    commonName: 'host-a1', publicKey: agent.publicKey, issuer: { certificate: ca, key: caKey.privateKey }, usage: 'client', dnsNames: ['host-a1'],
    notBefore: now, notAfter: new Date(now.getTime() + 3_600_000),
  });
  const serverPem = issueCertificate({
    commonName: 'ctl', publicKey: agent.publicKey, issuer: { certificate: ca, key: caKey.privateKey }, usage: 'server', dnsNames: ['ctl.example'],
    ipAddresses: ['127.0.0.1', '2001:db8::5'], notBefore: now, notAfter: new Date(now.getTime() + 3_600_000),
  });
  await writeFile(join(dir, 'ca.pem'), caPem);
  await writeFile(join(dir, 'leaf.pem'), leafPem);
  await writeFile(join(dir, 'server.pem'), serverPem);
  const v = await run(['openssl', 'verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslclient', join(dir, 'leaf.pem')]);
  t.match(v.stdout, /leaf.pem: OK/, 'the agent certificate verifies for client auth');
  const s = await run(['openssl', 'verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', join(dir, 'server.pem')]);
  t.match(s.stdout, /server.pem: OK/, 'the server certificate for server auth');
  const leaf = new X509Certificate(leafPem);
  t.equal(leaf.subjectAltName, 'DNS:host-a1');
  t.equal(new X509Certificate(serverPem).subjectAltName, 'DNS:ctl.example, IP Address:127.0.0.1, IP Address:2001:DB8:0:0:0:0:0:5');
  t.ok(leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  t.equal(new Date(leaf.validTo).getTime(), Math.floor((now.getTime() + 3_600_000) / 1000) * 1000, 'to the second');
  t.same(unpem('CERTIFICATE', pem('CERTIFICATE', leaf.raw)), leaf.raw, 'PEM round trip');
});

void t.test('certificate requests', async (t) => {
  const dir = await tempDir(t, 'hostnet-csr');
  const key = ec();
  const ours = parseCsr(createCsr('host-a1', key.privateKey));
  t.same([ours.commonName, ours.dnsNames, ours.otherNames], ['host-a1', ['host-a1'], 0], 'ours reads back');
  t.ok(ours.publicKey.equals(key.publicKey));
  await writeFile(join(dir, 'ours.csr'), createCsr('host-a1', key.privateKey));
  t.match((await run(['openssl', 'req', '-in', join(dir, 'ours.csr'), '-verify', '-noout'])).stderr, /verify OK/, 'OpenSSL verifies ours');

  await run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'o.key'), '-out', join(dir, 'o.csr'),
    '-subj', '/CN=host-b2', '-addext', 'subjectAltName=DNS:host-b2']);
  const theirs = parseCsr(await readFile(join(dir, 'o.csr'), 'utf8'));
  t.same([theirs.commonName, theirs.dnsNames], ['host-b2', ['host-b2']], 'OpenSSL\'s reads here');
  await run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', join(dir, 'i.key'), '-out', join(dir, 'i.csr'),
    '-subj', '/CN=host-b2', '-addext', 'subjectAltName=DNS:host-b2,IP:10.0.0.1']);
  t.equal(parseCsr(await readFile(join(dir, 'i.csr'), 'utf8')).otherNames, 1, 'an IP address asked for is counted');
  await run(['openssl', 'req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'r.key'), '-out', join(dir, 'r.csr'), '-subj', '/CN=host-b2']);
  const rsa = await readFile(join(dir, 'r.csr'), 'utf8');
  t.throws(() => parseCsr(rsa), new CsrError('has a rsa key; agent keys are ECDSA P-256'));

  const der = unpem('CERTIFICATE REQUEST', createCsr('host-a1', key.privateKey)) as Buffer;
  const tampered = Buffer.from(der);
  const at = tampered.indexOf(Buffer.from('host-a1'));
  tampered.write('host-x1', at);
  t.throws(() => parseCsr(pem('CERTIFICATE REQUEST', tampered)), new CsrError('has a signature that does not match its key'), 'a changed name breaks the signature');
  t.throws(() => parseCsr(pem('CERTIFICATE REQUEST', der.subarray(0, der.length - 3))), /is not valid DER: truncated/);
  t.throws(() => parseCsr('not pem'), /is not a PEM "CERTIFICATE REQUEST"/);
});
