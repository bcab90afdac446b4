// Who an agent is, from its TLS client certificate (the agent listener
// requires one signed by the agents CA): the first DNS name in its
// subjectAltName is the host id; its serial says which of the host's
// certificates it is (a revoked one is refused). A host can only sync,
// report and renew as itself. Expiry is checked here too: a resumed TLS
// session (the agent listener's tickets) carries the certificate as it was
// when the full handshake checked it.
import { unauthenticated } from '../../../proto/grpc/errors.js';
import type { CallContext } from '../../../proto/grpc/server.js';

export interface Peer {
  readonly hostId: string;
  readonly serial: string;
  /** When the certificate expires: a stream on it ends then. */
  readonly notAfter: Date;
}

/** The peer's certificate identity; throws UNAUTHENTICATED without one (or one naming no host). */
export function peerOf(ctx: CallContext): Peer {
  const cert = ctx.call.getAuthContext().sslPeerCertificate;
  if (!cert || Object.keys(cert).length === 0) throw unauthenticated('a client certificate signed by the controller\'s agents CA is required');
  const names = (cert.subjectaltname ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  const hostId = names[0];
  if (!hostId) throw unauthenticated('the client certificate names no host (no DNS subjectAltName)');
  const notAfter = new Date(cert.valid_to);
  if (!(notAfter.getTime() > Date.now())) {
    throw unauthenticated(`the client certificate ${cert.serialNumber} of host/${hostId} expired at ${notAfter.toISOString()}; enroll the server again`);
  }
  return { hostId, serial: cert.serialNumber, notAfter };
}
