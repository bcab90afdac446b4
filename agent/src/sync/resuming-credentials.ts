// The agent's TLS towards the controller, with session resumption: the
// session ticket of the last handshake is offered at the next connect, to
// whichever replica that is. Every replica encrypts tickets with the same key
// (derived from the agents CA's key, see AgentsCa.ticketKeys), so after a
// replica's restart or a failover an agent resumes instead of a full
// handshake: no certificate is signed or checked on either side (a reconnect
// costs the controller a third less CPU, the agent half: docs/benchmarks.md).
// The controller checks the resumed session's certificate as it checks a new
// one: revocation and expiry are in the handlers, not in the handshake.
//
// grpc-js has no option for it: its own credentials call tls.connect without
// a session. This is its ChannelCredentials contract (the abstract class and
// the SecureConnector it returns are in its typings) with tls.connect
// called as grpc-js's SecureConnectorImpl calls it, plus `session`.
import { type SecureContext, connect } from 'node:tls';
import { isIP } from 'node:net';
import { CallCredentials, ChannelCredentials } from '@grpc/grpc-js';

type Connector = ReturnType<ChannelCredentials['_createSecureConnector']>;
type Target = Parameters<ChannelCredentials['_createSecureConnector']>[0];

/** Host part of a "host:port" (brackets of an IPv6 literal removed). */
function hostOf(target: Target): string {
  if (target.scheme === 'unix') return 'localhost';
  const path = target.path;
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(path);
  if (bracket) return bracket[1] as string;
  const colons = path.split(':').length - 1;
  return colons === 1 ? path.slice(0, path.lastIndexOf(':')) : path;
}

export class ResumingCredentials extends ChannelCredentials {
  /** The latest ticket the controller sent (any replica's: they share the ticket key). */
  private session: Buffer | undefined;
  private resumedCount = 0;
  private fullCount = 0;

  /** `context` holds the CA the controller is checked against and this host's key and certificate. */
  constructor(private readonly context: SecureContext) {
    super();
  }

  /** Handshakes made since this was created: resumed from a ticket, and full. */
  handshakes(): { resumed: number; full: number } {
    return { resumed: this.resumedCount, full: this.fullCount };
  }

  override _isSecure(): boolean {
    return true;
  }

  override _equals(other: ChannelCredentials): boolean {
    return other === this;
  }

  override _createSecureConnector(target: Target, _options: unknown, callCredentials?: CallCredentials): Connector {
    const host = hostOf(target);
    const calls = callCredentials ?? CallCredentials.createEmpty();
    return {
      connect: (socket) => new Promise((resolve, reject) => {
        const tlsSocket = connect({
          socket, secureContext: this.context, host, ALPNProtocols: ['h2'],
          // SNI carries names only (RFC 6066); an address is checked against the certificate's IP SANs.
          ...(isIP(host) ? {} : { servername: host }),
          ...(this.session ? { session: this.session } : {}),
        }, () => {
          if (!tlsSocket.authorized) {
            reject(tlsSocket.authorizationError);
            return;
          }
          if (tlsSocket.isSessionReused()) this.resumedCount++;
          else this.fullCount++;
          resolve({ socket: tlsSocket, secure: true });
        });
        // TLS 1.3 tickets come after the handshake, while grpc-js reads the stream.
        tlsSocket.on('session', (s: Buffer) => { this.session = s; });
        tlsSocket.on('error', reject);
      }),
      waitForReady: () => Promise.resolve(),
      getCallCredentials: () => calls,
      destroy: () => undefined,
    };
  }
}
