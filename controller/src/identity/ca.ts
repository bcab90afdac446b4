// The controller's agents CA: the key that signs agent certificates (every
// replica has the same files; an operator may bring their own CA, or create
// one with `hostnet-controller ca init`). It issues short-lived client
// certificates naming a host, and, for the lab and small sites, the
// controller's own server certificate.
import { type KeyObject, X509Certificate, createPrivateKey, generateKeyPairSync, hkdfSync } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCertificate } from '../../../common/x509.js';

/** An issued certificate: its PEM, its serial (as X509Certificate prints it) and when it expires. */
export interface Issued {
  readonly pem: string;
  readonly serial: string;
  readonly notAfter: Date;
}

/** Issued certificates start this long before now: a server whose clock is a little behind still accepts them. */
const BACKDATE_MS = 5 * 60_000;

export class AgentsCa {
  private constructor(readonly certificate: X509Certificate, private readonly key: KeyObject, readonly pem: string) {}

  /** Reads the CA's certificate and key; throws naming the file and what is wrong with it. */
  static async load(certFile: string, keyFile: string): Promise<AgentsCa> {
    const [certPem, keyPem] = await Promise.all([readFile(certFile, 'utf8'), readFile(keyFile, 'utf8')]);
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(certPem);
    } catch (err) {
      throw new Error(`${certFile}: not a PEM certificate (${(err as Error).message})`, { cause: err });
    }
    if (!certificate.ca) throw new Error(`${certFile}: not a CA certificate (basicConstraints CA:TRUE is missing)`);
    const key = createPrivateKey(keyPem);
    if (!certificate.checkPrivateKey(key)) throw new Error(`${keyFile}: is not the key of ${certFile}`);
    return new AgentsCa(certificate, key, certPem);
  }

  /** A new CA (ECDSA P-256, ten years), in memory. */
  static create(commonName = 'hostnet agents CA', now = new Date()): { ca: AgentsCa; keyPem: string } {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const pem = issueCertificate({
      commonName, publicKey, selfKey: privateKey, usage: 'ca',
      notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter: new Date(now.getTime() + 3650 * 86_400_000),
    });
    return { ca: new AgentsCa(new X509Certificate(pem), privateKey, pem), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
  }

  /** The CA's SHA-256 fingerprint, "AB:CD:..." (as `openssl x509 -fingerprint -sha256` prints it). */
  get fingerprint(): string {
    return this.certificate.fingerprint256;
  }

  /**
   * The agent listener's TLS session ticket keys (48 bytes, as node's
   * `ticketKeys` takes them): derived from the CA's key, so that every
   * replica (they all have the CA's files) decrypts the tickets any replica
   * issued, across restarts, without a secret of its own to distribute. The
   * derivation is one-way: the tickets' key tells nothing about the CA's.
   * Whoever holds the CA's key can forge a ticket, as they can forge a
   * certificate. A new CA key makes every ticket void (a full handshake).
   */
  ticketKeys(): Buffer {
    const der = this.key.export({ type: 'pkcs8', format: 'der' });
    return Buffer.from(hkdfSync('sha256', der, 'hostnet agents CA', 'agent listener TLS session tickets v1', 48));
  }

  /** A client certificate for `hostId`'s agent key, valid for `lifetimeMs`. */
  issueAgent(hostId: string, publicKey: KeyObject, lifetimeMs: number, now = new Date()): Issued {
    return this.issue({ commonName: hostId, publicKey, usage: 'client', dnsNames: [hostId] }, lifetimeMs, now);
  }

  /** A server certificate for the controller's names and addresses. */
  issueServer(names: readonly string[], publicKey: KeyObject, lifetimeMs: number, now = new Date()): Issued {
    const ips = names.filter((n) => /^[\d.]+$|:/.test(n));
    const dns = names.filter((n) => !ips.includes(n));
    return this.issue({ commonName: dns[0] ?? ips[0] ?? 'hostnet-controller', publicKey, usage: 'server', dnsNames: dns, ipAddresses: ips }, lifetimeMs, now);
  }

  private issue(spec: { commonName: string; publicKey: KeyObject; usage: 'client' | 'server'; dnsNames: readonly string[]; ipAddresses?: readonly string[] },
    lifetimeMs: number, now: Date): Issued {
    // Never beyond the CA's own end: a chain with a longer-lived leaf does not verify after it.
    const notAfter = new Date(Math.min(now.getTime() + lifetimeMs, new Date(this.certificate.validTo).getTime()));
    const pem = issueCertificate({
      ...spec, issuer: { certificate: this.certificate, key: this.key }, notBefore: new Date(now.getTime() - BACKDATE_MS), notAfter,
    });
    return { pem, serial: new X509Certificate(pem).serialNumber, notAfter };
  }
}

/**
 * `hostnet-controller ca init --dir DIR [--server-name NAME ...]`: writes a
 * new CA (ca.pem, ca.key) and, for the names given, a server certificate it
 * signed (server.pem with the CA after it, server.key). Refuses to overwrite.
 */
export async function initCa(dir: string, serverNames: readonly string[], serverLifetimeMs = 3650 * 86_400_000): Promise<{ files: string[]; fingerprint: string }> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  for (const name of ['ca.pem', 'ca.key', 'server.pem', 'server.key']) {
    if (await stat(join(dir, name)).then(() => true, () => false)) throw new Error(`${join(dir, name)} exists: a CA is never overwritten`);
  }
  const { ca, keyPem } = AgentsCa.create();
  const files: [string, string, number][] = [['ca.pem', ca.pem, 0o644], ['ca.key', keyPem, 0o600]];
  if (serverNames.length > 0) {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const server = ca.issueServer(serverNames, publicKey, serverLifetimeMs);
    files.push(['server.pem', `${server.pem}${ca.pem}`, 0o644], ['server.key', privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), 0o600]);
  }
  for (const [name, text, mode] of files) await writeFile(join(dir, name), text, { mode, flag: 'wx' });
  return { files: files.map(([n]) => join(dir, n)), fingerprint: ca.fingerprint };
}
