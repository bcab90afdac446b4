// The agent listener: TCP accepted here, TLS handshakes run a few at a time
// in order of arrival, and each connection handed to the gRPC server once
// its handshake is done.
//
// Why not grpc-js's own TLS listener: it starts every handshake the moment
// the connection arrives. After a restart 10,000 agents arrive within a
// second; their handshakes (3.8 ms of CPU each) then advance in turns, so the
// first completes only when nearly all do (in the fleet benchmark no stream
// was up for 45 s), and agents that gave up meanwhile had cost their share of
// the work for nothing. Here at most `handshakes` run at once, the rest wait
// unread in the order they came, and each finished handshake is an agent
// streaming.
import { type Server as NetServer, type Socket, createServer as createNetServer } from 'node:net';
import { type TLSSocket, createServer as createTlsServer } from 'node:tls';
import { type Server, ServerCredentials } from '@grpc/grpc-js';
import { splitHostPort } from '../../common/names.js';

export interface AgentTls {
  /** The agents CA (PEM): client certificates are checked against it. */
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** 48 bytes: encrypts and decrypts session tickets (the same on every replica). */
  readonly ticketKeys: Buffer;
}

/**
 * The sessions' context, the same on every replica: node's default (with
 * requestCert) is a hash of the process's command line, and a session is
 * resumed only where its context matches, so every replica started with its
 * own --config refused the others' tickets (half the agents did full
 * handshakes after a restart in the fleet benchmark).
 */
const SESSION_CONTEXT = 'hostnet agent listener';

/** How long a session ticket is accepted: TLS 1.3's most (RFC 8446, 4.6.1). */
const TICKET_LIFETIME_S = 7 * 86_400;

export interface AgentListenerOptions {
  /** Handshakes at once (default 500). */
  readonly handshakes?: number;
  /** A handshake running this long no longer counts against `handshakes` (default 10 s): clients that stall cannot hold the others up for longer. */
  readonly slowMs?: number;
  /** A handshake not done by then is dropped (default 10 s). */
  readonly handshakeTimeoutMs?: number;
  /** A connection that waited this long is closed unserved (default: none; grpc-js clients wait as long as it takes). */
  readonly maxWaitMs?: number;
  /** Errors of the listening socket after it listens (accept failing: out of file descriptors). */
  readonly onError?: (err: Error) => void;
}

export interface AgentListener {
  readonly port: number;
  /** Connections accepted and waiting for their handshake. */
  waiting(): number;
  /** The most handshakes that ran at once (counted against the limit) since it began listening. */
  peakHandshakes(): number;
  /** Stops accepting and drops the connections still waiting (those handed to the gRPC server are its to close). */
  close(): Promise<void>;
}

/**
 * Listens on `address` for agents: TLS that asks every caller for a client
 * certificate signed by the agents CA but lets one without it finish the
 * handshake, so that an enrolling server (no certificate yet) can call
 * Enroll and anything else gets a gRPC status saying what is missing
 * (UNAUTHENTICATED from the handlers) instead of a dropped connection.
 *
 * Session tickets: every replica encrypts them with `ticketKeys` (the
 * same for all, see AgentsCa.ticketKeys), so an agent that reconnects after
 * a restart or a failover resumes (agent/src/sync/resuming-credentials.ts):
 * no certificate signed or checked (a third less CPU here than a full
 * handshake, half on the agent: docs/benchmarks.md). A resumed session carries the agent's
 * certificate as it was checked at the full handshake; the handlers check
 * its revocation and expiry at every call (identity/peer.ts), so a ticket
 * never outlives what its certificate allows. Tickets are accepted for 7
 * days (TLS 1.3's limit).
 */
export async function listenAgents(server: Server, address: string, creds: AgentTls, options: AgentListenerOptions = {}): Promise<AgentListener> {
  const limit = options.handshakes ?? 500;
  const slowMs = options.slowMs ?? 10_000;
  const maxWaitMs = options.maxWaitMs ?? Infinity;
  const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
  const tls = createTlsServer({
    ca: creds.ca, cert: creds.cert, key: creds.key, requestCert: true, rejectUnauthorized: false,
    ticketKeys: creds.ticketKeys, sessionTimeout: TICKET_LIFETIME_S, sessionIdContext: SESSION_CONTEXT, ALPNProtocols: ['h2'], handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  });
  /** Accepted, not yet handed to TLS, oldest first. */
  const queue: { socket: Socket; at: number }[] = [];
  /** Handshakes running, by the client's address and port (TLS's socket and the TCP one under it have the same). */
  const running = new Map<string, { socket: Socket; since: number }>();
  const keyOf = (s: Socket): string => `${s.remoteAddress ?? ''}:${s.remotePort ?? 0}`;
  /**
   * Handshakes that still count against the limit. `running` is in the order they started (a Map
   * iterates in insertion order, and `since` only grows), so the slow ones are its first entries:
   * counting them stops at the first that is not, instead of reading all of them at every handshake
   * (10,000 reconnects after a restart read the 500 running 10,000 times: 1 s of the replica's CPU).
   */
  const busy = (now: number): number => {
    let slow = 0;
    for (const { since } of running.values()) {
      if (now - since < slowMs) break;
      slow++;
    }
    return running.size - slow;
  };
  let timer: NodeJS.Timeout | undefined;
  let peak = 0;
  const pump = (): void => {
    const now = performance.now();
    let free = limit - busy(now);
    while (free > 0 && queue.length > 0) {
      const { socket, at } = queue.shift() as { socket: Socket; at: number };
      if (socket.destroyed) continue;
      if (now - at > maxWaitMs) {
        socket.destroy();
        continue;
      }
      // Deleted first, so that the entry goes to the end even if a closed connection's key is still there.
      running.delete(keyOf(socket));
      running.set(keyOf(socket), { socket, since: now });
      tls.emit('connection', socket);
      free--;
      peak = Math.max(peak, limit - free);
    }
    // Slow handshakes stop counting after slowMs: look again then.
    if (queue.length > 0 && !timer) timer = setTimeout(() => { timer = undefined; pump(); }, slowMs).unref();
  };
  /** A handshake ended (done, failed, or its connection closed): the next one starts. */
  const settle = (key: string, socket?: Socket): void => {
    const r = running.get(key);
    if (!r || (socket && r.socket !== socket)) return;
    running.delete(key);
    pump();
  };
  tls.on('secureConnection', (s: TLSSocket) => {
    settle(keyOf(s));
    injector.injectConnection(s);
  });
  tls.on('tlsClientError', (_err, s: TLSSocket) => settle(keyOf(s)));
  // pauseOnConnect: a waiting connection's ClientHello stays in the kernel until its turn, and TLS then reads the socket directly.
  const net: NetServer = createNetServer({ pauseOnConnect: true }, (socket) => {
    const key = keyOf(socket);
    socket.once('close', () => settle(key, socket));
    socket.on('error', () => undefined);
    queue.push({ socket, at: performance.now() });
    pump();
  });
  const [host, port] = splitHostPort(address);
  await new Promise<void>((resolve, reject) => {
    net.once('error', reject);
    net.listen({ host, port, backlog: 4096 }, () => { net.off('error', reject); resolve(); });
  });
  net.on('error', (err) => options.onError?.(err));
  const bound = net.address();
  return {
    port: typeof bound === 'object' && bound ? bound.port : port,
    waiting: () => queue.length,
    peakHandshakes: () => peak,
    close: async () => {
      if (timer) clearTimeout(timer);
      for (const { socket } of queue.splice(0)) socket.destroy();
      // Not waiting for net's close callback: it comes when every connection has ended, and the served ones are the gRPC server's.
      net.close();
    },
  };
}
