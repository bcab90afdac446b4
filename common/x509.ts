// X.509 for the controller's CA and its agents: certificates issued (a CA's
// own, agents' client certificates, the controller's server certificate),
// PKCS#10 requests made by an agent for its key and read back, checked, by
// the controller. Keys are ECDSA P-256 (RSA CA keys an operator brings sign
// too). Pure apart from crypto: the callers hold the keys and files.
import { type KeyObject, type X509Certificate, createHash, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { isIP } from 'node:net';
import {
  DerError, type Node, TAG, bitString, boolean, children, explicit, explicitTag, implicitTag, integer, nullValue, octetString, oid, readAll, readOid, sequence, set,
  time, tlv, utf8,
} from './der.js';

const OID = {
  ecPublicKey: '1.2.840.10045.2.1', p256: '1.2.840.10045.3.1.7',
  ecdsaSha256: '1.2.840.10045.4.3.2', rsaSha256: '1.2.840.113549.1.1.11',
  commonName: '2.5.4.3', subjectKeyId: '2.5.29.14', keyUsage: '2.5.29.15', subjectAltName: '2.5.29.17',
  basicConstraints: '2.5.29.19', authorityKeyId: '2.5.29.35', extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1', clientAuth: '1.3.6.1.5.5.7.3.2', extensionRequest: '1.2.840.113549.1.9.14',
} as const;

/** PEM text of DER bytes. */
export function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** The DER bytes of the first PEM block labelled `label`; undefined when there is none. */
export function unpem(label: string, text: string): Buffer | undefined {
  const m = new RegExp(`-----BEGIN ${label}-----([A-Za-z0-9+/=\\s]*)-----END ${label}-----`).exec(text);
  return m?.[1] === undefined ? undefined : Buffer.from(m[1].replace(/\s+/g, ''), 'base64');
}

const algorithm = (key: KeyObject): Buffer => {
  if (key.asymmetricKeyType === 'ec') return sequence(oid(OID.ecdsaSha256));
  if (key.asymmetricKeyType === 'rsa') return sequence(oid(OID.rsaSha256), nullValue());
  throw new Error(`cannot sign with a ${key.asymmetricKeyType ?? 'secret'} key: ECDSA or RSA`);
};

/** A signed structure: the signed bytes, the algorithm, the signature (ECDSA signatures are DER already). */
const signed = (body: Buffer, key: KeyObject): Buffer => sequence(body, algorithm(key), bitString(sign('sha256', body, key)));

const name = (commonName: string): Buffer => sequence(set(sequence(oid(OID.commonName), utf8(commonName))));
const extension = (id: string, critical: boolean, value: Buffer): Buffer =>
  sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
/** The key identifier of a public key: SHA-1 of its BIT STRING's bits (RFC 5280 4.2.1.2, method 1). */
const keyId = (spki: Buffer): Buffer => {
  const bits = children(readAll(spki))[1];
  return createHash('sha1').update(bits ? bits.content.subarray(1) : spki).digest();
};
const spkiOf = (key: KeyObject): Buffer => key.export({ type: 'spki', format: 'der' });

/** Subject alternative names: DNS names ([2]) and IP addresses ([7], 4 or 16 bytes). */
function altNames(dns: readonly string[], ips: readonly string[]): Buffer {
  const ipBytes = (ip: string): Buffer => {
    if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
    const [head = '', tail = ''] = ip.split('::');
    const groups = (s: string): string[] => (s ? s.split(':') : []);
    const h = groups(head);
    const t = ip.includes('::') ? groups(tail) : [];
    const all = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
    return Buffer.from(all.map((g) => g.padStart(4, '0')).join(''), 'hex');
  };
  return sequence(...dns.map((d) => tlv(implicitTag(2), Buffer.from(d, 'ascii'))), ...ips.map((ip) => tlv(implicitTag(7), ipBytes(ip))));
}

export interface Issuer {
  readonly certificate: X509Certificate;
  readonly key: KeyObject;
}

export interface CertificateSpec {
  readonly commonName: string;
  readonly publicKey: KeyObject;
  /** Who signs it; undefined: self-signed with `selfKey` (a CA's own certificate). */
  readonly issuer?: Issuer;
  readonly selfKey?: KeyObject;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** What it is for: a CA, an agent (client), the controller (server, and client to peers). */
  readonly usage: 'ca' | 'client' | 'server';
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

/** A fresh serial: 16 random bytes, positive. */
export function newSerial(): Buffer {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f | 0x01;
  return b;
}

/** The Name a certificate gives as its subject, as its DER bytes (a child's issuer must be exactly these). */
function subjectOf(cert: X509Certificate): Buffer {
  const tbs = children(children(readAll(cert.raw))[0] as Node);
  return (tbs[0]?.tag === explicitTag(0) ? tbs[5] : tbs[4])?.raw ?? Buffer.alloc(0);
}

/** Issues a certificate; returns it as PEM. */
export function issueCertificate(spec: CertificateSpec, serial: Buffer = newSerial()): string {
  const signer = spec.issuer?.key ?? spec.selfKey;
  if (!signer) throw new Error('a certificate needs an issuer or its own key');
  const spki = spkiOf(spec.publicKey);
  const usage = {
    ca: [extension(OID.basicConstraints, true, sequence(boolean(true), integer(0))), extension(OID.keyUsage, true, bitString(Buffer.from([0x86]), 1))],
    client: [extension(OID.basicConstraints, true, sequence()), extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
      extension(OID.extKeyUsage, false, sequence(oid(OID.clientAuth)))],
    server: [extension(OID.basicConstraints, true, sequence()), extension(OID.keyUsage, true, bitString(Buffer.from([0x80]), 7)),
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth)))],
  }[spec.usage];
  const names = [...(spec.dnsNames ?? []), ...(spec.ipAddresses ?? [])];
  const extensions = [
    ...usage,
    extension(OID.subjectKeyId, false, octetString(keyId(spki))),
    ...(spec.issuer ? [extension(OID.authorityKeyId, false, sequence(tlv(implicitTag(0), keyId(spkiOf(spec.issuer.certificate.publicKey)))))] : []),
    ...(names.length > 0 ? [extension(OID.subjectAltName, false, altNames(spec.dnsNames ?? [], spec.ipAddresses ?? []))] : []),
  ];
  const subject = name(spec.commonName);
  const tbs = sequence(
    explicit(0, integer(2)),
    integer(serial),
    algorithm(signer),
    spec.issuer ? subjectOf(spec.issuer.certificate) : subject,
    sequence(time(spec.notBefore), time(spec.notAfter)),
    subject,
    spki,
    explicit(3, sequence(...extensions)),
  );
  return pem('CERTIFICATE', signed(tbs, signer));
}

/** A PKCS#10 request for `privateKey`'s public key naming `hostId` (common name and the one DNS name). */
export function createCsr(hostId: string, privateKey: KeyObject): string {
  const publicKey = createPublicKey(privateKey);
  const request = sequence(oid(OID.extensionRequest), set(sequence(extension(OID.subjectAltName, false, altNames([hostId], [])))));
  const info = sequence(integer(0), name(hostId), spkiOf(publicKey), tlv(explicitTag(0), [request]));
  return pem('CERTIFICATE REQUEST', signed(info, privateKey));
}

/** What a request asks for, its signature checked. */
export interface CsrInfo {
  readonly publicKey: KeyObject;
  readonly commonName: string | undefined;
  readonly dnsNames: readonly string[];
  /** Other subject alternative names (IP addresses, URIs, ...): none may be asked for. */
  readonly otherNames: number;
}

export class CsrError extends Error {}

const text = (n: Node): string => {
  if (n.tag === TAG.utf8String || n.tag === TAG.printableString || n.tag === TAG.ia5String) return n.content.toString('utf8');
  throw new CsrError('a name is not a string');
};

/** Reads and checks a PEM certificate request: its structure, its key (ECDSA P-256), its signature. Throws CsrError saying what is wrong. */
export function parseCsr(pemText: string): CsrInfo {
  const der = unpem('CERTIFICATE REQUEST', pemText) ?? unpem('NEW CERTIFICATE REQUEST', pemText);
  if (!der) throw new CsrError('is not a PEM "CERTIFICATE REQUEST"');
  try {
    const [info, alg, sig] = children(readAll(der));
    if (!info || !alg || !sig || sig.tag !== TAG.bitString) throw new CsrError('is not a certificate request');
    const [version, subject, spki, attributes] = children(info);
    if (!version || version.tag !== TAG.integer || !subject || !spki) throw new CsrError('is not a certificate request');
    let publicKey: KeyObject;
    try {
      publicKey = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
    } catch {
      throw new CsrError('has a public key that cannot be read');
    }
    if (publicKey.asymmetricKeyType !== 'ec' || publicKey.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new CsrError(`has a ${publicKey.asymmetricKeyType ?? ''} key; agent keys are ECDSA P-256`);
    }
    const algId = children(alg)[0];
    if (!algId || readOid(algId) !== OID.ecdsaSha256) throw new CsrError('is not signed with ecdsa-with-SHA256');
    if (!verify('sha256', info.raw, publicKey, sig.content.subarray(1))) throw new CsrError('has a signature that does not match its key');
    let commonName: string | undefined;
    for (const rdn of children(subject)) {
      for (const atv of children(rdn)) {
        const [type, value] = children(atv);
        if (type && value && readOid(type) === OID.commonName) commonName = text(value);
      }
    }
    const dnsNames: string[] = [];
    let otherNames = 0;
    for (const attr of attributes ? children(attributes) : []) {
      const [type, values] = children(attr);
      if (!type || !values || readOid(type) !== OID.extensionRequest) continue;
      for (const exts of children(values)) {
        for (const ext of children(exts)) {
          const parts = children(ext);
          const id = parts[0];
          const value = parts[parts.length - 1];
          if (!id || !value || readOid(id) !== OID.subjectAltName) continue;
          for (const gn of children(readAll(value.content))) {
            if (gn.tag === implicitTag(2)) dnsNames.push(gn.content.toString('ascii'));
            else otherNames++;
          }
        }
      }
    }
    return { publicKey, commonName, dnsNames, otherNames };
  } catch (err) {
    if (err instanceof DerError) throw new CsrError(`is not valid DER: ${err.message}`);
    throw err;
  }
}
