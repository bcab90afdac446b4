// This host's identity towards the controller: its own key (made here, it
// never leaves the server) and the short-lived certificate the controller's
// agents CA signed for it. At first start the agent enrolls with the
// one-time token install-agent wrote; from then on it renews over its mutual
// TLS stream when two thirds of the certificate's life are gone, and the
// caller moves its stream to the new certificate. Files are replaced
// atomically (key and certificate written aside, then renamed key first; a
// start that finds the pair half-renamed finishes it).
import { type KeyObject, X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { mkdir, readFile, rename, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createSecureContext } from 'node:tls';
import { type ChannelCredentials, status as Status, credentials } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { createCsr } from '../../../common/x509.js';
import { HostnetError, createClient } from '../../../proto/grpc/index.js';
import { type AgentCertificate, EnrollService } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import { writeSynced } from './state-file.js';
import { ResumingCredentials } from './resuming-credentials.js';

export interface IdentityFiles {
  /** The CA the controller's server certificate is checked against. */
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
  /** The one-time token install-agent wrote (used when there is no usable certificate). */
  readonly enrollmentTokenFile: string;
}

/** Why the agent cannot get a certificate: what to do about it is in the message. */
export class IdentityError extends Error {
  override readonly name = 'IdentityError';
}

const newKey = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
const keyPem = (k: KeyObject): string => k.export({ type: 'pkcs8', format: 'pem' }).toString();
const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

export class AgentIdentity {
  private creds: ChannelCredentials;
  private cert: X509Certificate;
  /** When this certificate was received (its file's time): renewal is due at two thirds of its life from then. */
  private receivedAt: number;

  private constructor(private readonly o: { files: IdentityFiles; hostId: string; log: Logger; ca: Buffer }, cert: X509Certificate, key: KeyObject, receivedAt: number) {
    this.cert = cert;
    this.receivedAt = receivedAt;
    this.creds = streamCredentials(o.ca, key, cert);
  }

  /**
   * The identity on disk, or a new one by enrollment when there is none
   * (or it expired, or names another host). Enrollment is retried while no
   * controller answers; a refused token throws IdentityError.
   */
  static async open(o: { files: IdentityFiles; hostId: string; addresses: readonly string[]; log: Logger; retryMs?: number }): Promise<AgentIdentity> {
    const { files } = o;
    const ca = await readFile(files.caFile).catch((err: NodeJS.ErrnoException) => {
      throw new IdentityError(`controller.tls.caFile ${files.caFile}: cannot read it (${err.code ?? 'error'}); install-agent writes it`);
    });
    await finishRename(files);
    const held = await loadPair(files, o.hostId);
    if (held) {
      o.log.info({ serial: held.cert.serialNumber, notAfter: held.cert.validTo }, 'client certificate loaded');
      return new AgentIdentity({ ...o, ca }, held.cert, held.key, held.receivedAt);
    }
    const token = (await readFile(files.enrollmentTokenFile, 'utf8').catch(() => '')).trim();
    if (!token) {
      throw new IdentityError(`no usable client certificate at ${files.certFile} and no enrollment token at ${files.enrollmentTokenFile}: `
        + `create a token with "hostnetctl enroll ${o.hostId}" and run install-agent --enrollment-token again`);
    }
    const key = newKey();
    const csrPem = createCsr(o.hostId, key);
    for (let attempt = 0; ; attempt++) {
      const address = o.addresses[attempt % o.addresses.length] as string;
      const client = createClient(EnrollService, address, credentials.createSsl(ca));
      try {
        const r = await client.enroll({ hostId: o.hostId, token, csrPem }, { timeoutMs: 10_000 });
        const cert = await store(files, key, r.certificate, o.hostId);
        o.log.info({ serial: cert.serialNumber, notAfter: cert.validTo, controller: address }, 'enrolled: client certificate received');
        return new AgentIdentity({ ...o, ca }, cert, key, Date.now());
      } catch (err) {
        const e = HostnetError.from(err);
        if (e.code !== Status.UNAVAILABLE && e.code !== Status.DEADLINE_EXCEEDED) {
          throw new IdentityError(`enrollment refused by ${address}: ${e.message}`);
        }
        o.log.warn({ controller: address, err: e.message }, 'cannot reach the controller to enroll; retrying');
        // Unref'd: an agent stopped while it waits for a controller to enroll with still exits.
        await new Promise((res) => setTimeout(res, o.retryMs ?? 2000).unref());
      } finally {
        client.close();
      }
    }
  }

  /** TLS with the current certificate (a new stream after a renewal uses the new one, and no session of the old one). */
  credentials(): ChannelCredentials {
    return this.creds;
  }

  get serial(): string {
    return this.cert.serialNumber;
  }

  get notAfter(): Date {
    return new Date(this.cert.validTo);
  }

  /** When a renewal is due: two thirds of the way from receiving the certificate to its end. */
  renewAt(): number {
    const end = this.notAfter.getTime();
    return this.receivedAt + (end - this.receivedAt) * 2 / 3;
  }

  /** A new key and certificate through `renew` (the Renew call on the current stream); stored, then in use. */
  async renew(call: (csrPem: string) => Promise<AgentCertificate | undefined>): Promise<void> {
    const key = newKey();
    const cert = await store(this.o.files, key, await call(createCsr(this.o.hostId, key)), this.o.hostId);
    this.cert = cert;
    this.receivedAt = Date.now();
    this.creds = streamCredentials(this.o.ca, key, cert);
    this.o.log.info({ serial: cert.serialNumber, notAfter: cert.validTo }, 'client certificate renewed');
  }
}

/** Mutual TLS for the agent's streams, resuming the last session (a new certificate starts with none). */
function streamCredentials(ca: Buffer, key: KeyObject, cert: X509Certificate): ResumingCredentials {
  return new ResumingCredentials(createSecureContext({ ca, key: keyPem(key), cert: cert.toString() }));
}

/** Checks an issued certificate (for `hostId`, for `key`) and writes key and certificate aside, then in place. */
async function store(files: IdentityFiles, key: KeyObject, issued: AgentCertificate | undefined, hostId: string): Promise<X509Certificate> {
  const cert = new X509Certificate(issued?.certificatePem ?? '');
  if (!cert.checkPrivateKey(key)) throw new IdentityError('the controller sent a certificate for another key');
  if (cert.subjectAltName !== `DNS:${hostId}`) throw new IdentityError(`the controller sent a certificate for ${cert.subjectAltName ?? 'no name'}, not ${hostId}`);
  await mkdir(dirname(files.certFile), { recursive: true, mode: 0o700 });
  await mkdir(dirname(files.keyFile), { recursive: true, mode: 0o700 });
  await writeSynced(`${files.keyFile}.new`, keyPem(key), 0o600);
  await writeSynced(`${files.certFile}.new`, cert.toString(), 0o644);
  await rename(`${files.keyFile}.new`, files.keyFile);
  await rename(`${files.certFile}.new`, files.certFile);
  return cert;
}

/** A renewal interrupted between its two renames: the key is new, its certificate still aside. */
async function finishRename(files: IdentityFiles): Promise<void> {
  if (!(await exists(`${files.certFile}.new`)) || (await exists(`${files.keyFile}.new`))) return;
  await rename(`${files.certFile}.new`, files.certFile);
}

/** The key and certificate on disk when they belong together, name this host and have not expired. */
async function loadPair(files: IdentityFiles, hostId: string): Promise<{ cert: X509Certificate; key: KeyObject; receivedAt: number } | undefined> {
  try {
    const [certPem, kPem, st] = await Promise.all([readFile(files.certFile, 'utf8'), readFile(files.keyFile, 'utf8'), stat(files.certFile)]);
    const cert = new X509Certificate(certPem);
    const key = createPrivateKey(kPem);
    const usable = cert.checkPrivateKey(key) && cert.subjectAltName === `DNS:${hostId}` && Date.parse(cert.validTo) > Date.now();
    return usable ? { cert, key, receivedAt: st.mtimeMs } : undefined;
  } catch {
    return undefined;
  }
}
