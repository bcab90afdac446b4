// Who an agent is, from its TLS client certificate: the first DNS name in the
// certificate's subjectAltName is the host id. A host can only sync and
// report as itself.
import type { CallContext } from '../../proto/grpc/server.js';

/**
 * The host id the peer's certificate names; '' for a certificate without a
 * DNS name (so it matches no host), undefined without a client certificate.
 */
export function hostIdFromCertificate(ctx: CallContext): string | undefined {
  const cert = ctx.call.getAuthContext().sslPeerCertificate;
  if (!cert || Object.keys(cert).length === 0) return undefined;
  const names = (cert.subjectaltname ?? '').split(',').map((s) => s.trim()).filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  return names[0] ?? '';
}
