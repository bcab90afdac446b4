// Enrollment and renewal against the store: a one-time token per host
// (stored as its SHA-256, expiring), exchanged once for the host's first
// certificate; renewals by the agent with its current certificate. The
// certificates a host's agent may use are recorded in its credential (the
// newest and the one it renewed); deleting the credential (with the host, or
// by a new enrollment) revokes the others on every replica.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import { HOST_ID, HOST_ID_HINT } from '../../../common/names.js';
import { CsrError, type CsrInfo, parseCsr } from '../../../common/x509.js';
import { HostnetError, invalidArgument, notFound, unauthenticated } from '../../../proto/grpc/errors.js';
import { type AgentCertificate, AgentCertificateSchema, type EnrollService, EnrollmentSchema, HostCredentialSchema } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import type { Reader, Store, Tx } from '../store/store.js';
import type { Logger } from '../../../common/log.js';
import type { ServiceImpl } from '../../../proto/grpc/server.js';
import type { AgentsCa } from './ca.js';

/** "hne1_" and 32 random bytes in base64url. */
export const ENROLLMENT_TOKEN = /^hne1_[A-Za-z0-9_-]{43}$/;
/** A request for a P-256 key is well under 1 KiB; anything much bigger is not one. */
export const MAX_CSR_BYTES = 8192;
export const MAX_TOKEN_TTL_MS = 86_400_000;

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

export interface IdentityOptions {
  readonly ca: AgentsCa;
  /** How long agent certificates live. */
  readonly certificateLifetimeMs: number;
  /** How long an enrollment token lives unless the call says otherwise. */
  readonly tokenLifetimeMs: number;
  readonly now?: () => Date;
}

/** Creates (or replaces) `hostId`'s enrollment token; returns the token, shown once. */
export async function createEnrollment(store: Store, o: IdentityOptions, hostId: string, ttlMs: number, createdBy: string): Promise<{ token: string; expiresAt: Date }> {
  if (ttlMs <= 0 || ttlMs > MAX_TOKEN_TTL_MS) throw invalidArgument('ttl_seconds', `must be between 1 and ${MAX_TOKEN_TTL_MS / 1000} (a day)`);
  const token = `hne1_${randomBytes(32).toString('base64url')}`;
  const expiresAt = new Date((o.now?.() ?? new Date()).getTime() + ttlMs);
  await store.transact((tx) => {
    // A host's agent, or a switch's (ToR mode): the same kind of certificate, naming it.
    if (!tx.get('host', hostId) && !tx.get('switch', hostId)) throw notFound(`host/${hostId}`, 'host_id');
    tx.put('enrollment', hostId, create(EnrollmentSchema, { hostId, tokenSha256: sha256(token), expiresUnixMs: BigInt(expiresAt.getTime()), createdBy }));
  });
  return { token, expiresAt };
}

/** The request's CSR, read and checked: it must name `hostId` and nothing else. */
function checkCsr(csrPem: string, hostId: string, field: string): CsrInfo {
  if (csrPem.length === 0) throw invalidArgument(field, 'is required: a PEM certificate request for the agent\'s key');
  if (csrPem.length > MAX_CSR_BYTES) throw invalidArgument(field, `is ${csrPem.length} bytes; a certificate request is at most ${MAX_CSR_BYTES}`);
  let csr: CsrInfo;
  try {
    csr = parseCsr(csrPem);
  } catch (err) {
    if (err instanceof CsrError) throw invalidArgument(field, err.message);
    throw err;
  }
  const named = [...new Set([...(csr.commonName !== undefined ? [csr.commonName] : []), ...csr.dnsNames])];
  if (csr.otherNames > 0) throw invalidArgument(field, 'asks for names other than DNS names; an agent certificate names its host only');
  const others = named.filter((n) => n !== hostId);
  if (named.length === 0 || others.length > 0) {
    throw invalidArgument(field, `names ${others.length > 0 ? others.join(', ') : 'no host'}; it must name ${hostId} (common name and DNS name) and nothing else`);
  }
  return csr;
}

function credentialWith(tx: Tx, hostId: string, issued: { serial: string; notAfter: Date }, keep: string | undefined, now: Date): void {
  const had = tx.get('credential', hostId)?.value.certificates ?? [];
  const kept = had.filter((c) => c.serial === keep && Number(c.notAfterUnixMs) > now.getTime());
  tx.put('credential', hostId, create(HostCredentialSchema, {
    hostId, certificates: [{ serial: issued.serial, notAfterUnixMs: BigInt(issued.notAfter.getTime()) }, ...kept],
  }));
}

const answer = (o: IdentityOptions, issued: { pem: string; notAfter: Date }): AgentCertificate =>
  create(AgentCertificateSchema, { certificatePem: issued.pem, caPem: o.ca.pem, notAfterUnixMs: BigInt(issued.notAfter.getTime()) });

/**
 * Exchanges a host's enrollment token and CSR for its first certificate. The
 * token is used up; the host's earlier certificates are revoked (a server
 * enrolled again is a new server). Nothing is stored when anything is wrong.
 */
export async function enroll(store: Store, o: IdentityOptions, req: { hostId: string; token: string; csrPem: string }): Promise<AgentCertificate> {
  if (!HOST_ID.test(req.hostId)) throw invalidArgument('host_id', `must be ${HOST_ID_HINT}`);
  if (!ENROLLMENT_TOKEN.test(req.token)) throw invalidArgument('token', 'is not an enrollment token ("hne1_" and 43 characters, as hostnetctl enroll prints it)');
  const csr = checkCsr(req.csrPem, req.hostId, 'csr_pem');
  const { result } = await store.transact((tx) => {
    const now = o.now?.() ?? new Date();
    const pending = tx.get('enrollment', req.hostId)?.value;
    // One answer for "no token" and "another token": a caller learns nothing about other hosts' tokens.
    if (!pending || !timingSafeEqual(Buffer.from(pending.tokenSha256), sha256(req.token))) {
      throw unauthenticated(`the token is not a pending enrollment token of host/${req.hostId} (used already, or replaced by a newer one?); create one with: hostnetctl enroll ${req.hostId}`);
    }
    if (Number(pending.expiresUnixMs) <= now.getTime()) {
      throw unauthenticated(`the enrollment token of host/${req.hostId} expired at ${new Date(Number(pending.expiresUnixMs)).toISOString()}; create a new one with: hostnetctl enroll ${req.hostId}`);
    }
    if (!tx.get('host', req.hostId) && !tx.get('switch', req.hostId)) throw notFound(`host/${req.hostId}`, 'host_id');
    const issued = o.ca.issueAgent(req.hostId, csr.publicKey, o.certificateLifetimeMs, now);
    tx.delete('enrollment', req.hostId);
    // Keeping none of the host's earlier certificates revokes them.
    credentialWith(tx, req.hostId, issued, undefined, now);
    return issued;
  });
  return answer(o, result);
}

/** A new certificate for the host whose current (accepted) certificate `serial` is; that one stays accepted until it expires. */
export async function renew(store: Store, o: IdentityOptions, peer: { hostId: string; serial: string }, csrPem: string): Promise<AgentCertificate> {
  const csr = checkCsr(csrPem, peer.hostId, 'csr_pem');
  const { result } = await store.transact((tx) => {
    const now = o.now?.() ?? new Date();
    checkAccepted(tx, peer);
    const issued = o.ca.issueAgent(peer.hostId, csr.publicKey, o.certificateLifetimeMs, now);
    credentialWith(tx, peer.hostId, issued, peer.serial, now);
    return issued;
  });
  return answer(o, result);
}

/** Throws PERMISSION_DENIED unless `peer`'s certificate is one its host's (or switch's) credential lists (and the host or switch exists). */
export function checkAccepted(store: Reader, peer: { hostId: string; serial: string }): void {
  const listed = store.get('credential', peer.hostId)?.value.certificates.some((c) => c.serial === peer.serial);
  if (!listed || (!store.get('host', peer.hostId) && !store.get('switch', peer.hostId))) {
    throw new HostnetError(Status.PERMISSION_DENIED, {
      reason: 'CERTIFICATE_REVOKED', resource: `host/${peer.hostId}`,
      message: `the certificate ${peer.serial} of host/${peer.hostId} is revoked (the host was deleted or enrolled again); enroll the server again`,
    });
  }
}

/** EnrollService: the token alone authenticates (the server has no certificate yet). */
export function enrollService(store: Store, o: IdentityOptions | undefined, log: Logger): ServiceImpl<typeof EnrollService.method> {
  return {
    async enroll(req) {
      if (!o) throw new HostnetError(Status.UNIMPLEMENTED, { reason: 'UNIMPLEMENTED', message: 'this controller has no agents CA (ca.certFile, ca.keyFile)' });
      const certificate = await enroll(store, o, req);
      log.info({ host: req.hostId }, 'host enrolled: its first certificate issued');
      return { certificate };
    },
  };
}
