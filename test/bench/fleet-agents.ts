// Simulated agents for the fleet benchmark, in a process of their own (so
// that the controllers' RSS is theirs alone): each enrolls as the agent does
// (its own P-256 key, a CSR, the one-time token) and streams over a mutual
// TLS connection of its own with its certificate, ACKing what it gets, remembering the versions it has
// (its Hello after a reconnect names them, as the real agent's does) and
// reconnecting to the next controller the way the agent does (Reconnects).
// Driven over the fork IPC channel:
//   { cmd: 'start', hosts, tokens, caPem, addresses } -> { event: 'synced', enrollMs } once every agent has its first update
//   { cmd: 'wait', prefix, since }           -> { event: 'arrived', ms: [...] } once every agent has the prefix
//   { cmd: 'count' }                         -> { event: 'count', streaming, endings, resumed, full, lagMs } (why streams ended since the last count; TLS handshakes so far, resumed and full;
//                                               the longest its event loop was held up since the last count: 5,000 agents share one, a real agent has its own)
//   { cmd: 'stop' }
import { create } from '@bufbuild/protobuf';
import { generateKeyPairSync } from 'node:crypto';
import { createSecureContext } from 'node:tls';
import { credentials } from '@grpc/grpc-js';
import { createCsr } from '../../common/x509.js';
import { createClient } from '../../proto/grpc/index.js';
import { EnrollService } from '../../proto/gen/hostnet/v1/identity_pb.js';
import { AgentService, SyncRequestSchema, type SyncResponse } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { Reconnects } from '../../agent/src/sync/backoff.js';
import { ResumingCredentials } from '../../agent/src/sync/resuming-credentials.js';

type Client = ReturnType<typeof createClient<typeof AgentService.method>>;
const now = (): number => performance.timeOrigin + performance.now();

interface Sim {
  readonly hostId: string;
  firewall: string;
  routing: string;
  streaming: boolean;
  since: number;
  readonly reconnects: Reconnects;
  address: number;
  /** Prefixes as they first arrived (epoch ms). */
  readonly arrived: Map<string, number>;
  call: ReturnType<Client['sync']> | undefined;
  /** Its TLS identity, and its open channel (one at a time). */
  creds: ResumingCredentials | undefined;
  client: Client | undefined;
}

// 5,000 agents share this process (a real one has a machine of its own): what costs only the
// simulation CPU goes. The stack traces of the errors of failed connects and ended streams
// (grpc-js and net make one for each) were 6-8 % of it while agents retried after a restart.
Error.stackTraceLimit = 0;

const sims: Sim[] = [];
let addresses: string[] = [];
let stopped = false;
/** Why streams ended since the last count (gRPC code and details): what a reconnect storm runs into. */
const endings = new Map<string, number>();
/**
 * How long the event loop was held up: a 50 ms tick that notes how late it runs. A hold-up still going on is counted at the
 * count that ends it (the time since the last tick), not lost: node's monitorEventLoopDelay records one only at its next tick.
 */
const TICK_MS = 50;
let lastTick = performance.now();
let heldUpMs = 0;
setInterval(() => {
  const at = performance.now();
  heldUpMs = Math.max(heldUpMs, at - lastTick - TICK_MS);
  lastTick = at;
}, TICK_MS);

/**
 * A new channel for each attempt, closed when its stream ends, as the agent's SyncClient does. A
 * channel kept per address (as here before 2026-12-03) reconnects on grpc-js's own subchannel
 * backoff (1 s, x1.6, up to 120 s) after its controller went away, not on the agent's: the restart
 * figure measured that (58 s for 3,000 agents, 120 s for 10,000).
 */
function channel(s: Sim, address: string): Client {
  // `ipv4:` (the replicas' addresses are IPv4 literals): grpc-js's default resolver makes a c-ares
  // resolver for every channel, even for a literal, 8-22 % of these processes' CPU while 10,000
  // agents retry after a restart. Same TCP connection and TLS either way; only the simulation pays it.
  s.client = createClient(AgentService, `ipv4:${address}`, s.creds as ResumingCredentials, { 'grpc.use_local_subchannel_pool': 1, 'grpc.max_receive_message_length': 64 << 20 });
  return s.client;
}

/** Enrolls `s` with `token` through `via` (one server-TLS channel shared by the enrollments). */
async function enroll(s: Sim, token: string, via: ReturnType<typeof createClient<typeof EnrollService.method>>, caPem: string): Promise<void> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const r = await via.enroll({ hostId: s.hostId, token, csrPem: createCsr(s.hostId, privateKey) });
  // The agent's own stream credentials (agent/src/sync/identity.ts): one TLS context, made once,
  // and the session ticket of the last connect offered at the next (a reconnect resumes).
  s.creds = new ResumingCredentials(createSecureContext({
    ca: caPem, key: privateKey.export({ type: 'pkcs8', format: 'pem' }), cert: r.certificate?.certificatePem ?? '',
  }));
}

function connect(s: Sim): void {
  if (stopped) return;
  const address = addresses[s.address % addresses.length] as string;
  const client = channel(s, address);
  const call = client.sync();
  s.call = call;
  const accepted = (): void => {
    if (s.streaming) return;
    s.streaming = true;
    s.since = Date.now();
    s.reconnects.accepted();
  };
  call.on('data', (m: SyncResponse) => {
    accepted();
    const at = now();
    if (m.update.case === 'snapshot') {
      s.firewall = m.update.value.firewall?.version ?? '';
      s.routing = m.update.value.routing?.version ?? '';
      for (const o of m.update.value.firewall?.objects ?? []) for (const p of o.prefixes) if (!s.arrived.has(p)) s.arrived.set(p, at);
    } else if (m.update.case === 'delta') {
      const d = m.update.value;
      if (d.firewall) s.firewall = d.firewall.version;
      if (d.routing) s.routing = d.routing.version;
      for (const c of d.firewall?.objectChanges ?? []) for (const p of c.added) if (!s.arrived.has(p)) s.arrived.set(p, at);
    }
    call.write(create(SyncRequestSchema, { message: { case: 'ack', value: { version: m.version } } }));
  });
  // The response headers: the Hello was accepted (an up-to-date agent gets no update).
  call.on('metadata', accepted);
  const again = (): void => {
    if (s.call !== call) return;
    if (s.streaming && Date.now() - s.since > 10_000) s.reconnects.stable();
    s.call = undefined;
    client.close();
    s.client = undefined;
    s.streaming = false;
    s.address++;
    setTimeout(() => connect(s), s.reconnects.next());
  };
  call.on('error', (err: Error & { code?: number; details?: string }) => {
    const why = `${err.code ?? '?'} ${(err.details ?? err.message).slice(0, 80)}`;
    endings.set(why, (endings.get(why) ?? 0) + 1);
    again();
  });
  call.on('end', again);
  call.write(create(SyncRequestSchema, { message: { case: 'hello', value: { hostId: s.hostId, agentVersion: 'bench', firewallVersion: s.firewall, routingVersion: s.routing } } }));
}

const send = (m: unknown): void => { process.send?.(m); };

async function until(pred: () => boolean, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
}

process.on('message', (raw) => {
  const m = raw as { cmd: string; hosts?: string[]; tokens?: string[]; caPem?: string; addresses?: string[]; prefix?: string; first?: number };
  void (async () => {
    if (m.cmd === 'start') {
      addresses = m.addresses ?? [];
      const caPem = m.caPem ?? '';
      for (const [i, hostId] of (m.hosts ?? []).entries()) {
        sims.push({
          hostId, firewall: '', routing: '', streaming: false, since: 0, reconnects: new Reconnects(addresses.length), address: (m.first ?? 0) + i, arrived: new Map(), call: undefined,
          creds: undefined, client: undefined,
        });
      }
      const enrolling = performance.now();
      const via = createClient(EnrollService, addresses[(m.first ?? 0) % addresses.length] as string, credentials.createSsl(Buffer.from(caPem)));
      for (let i = 0; i < sims.length; i += 50) {
        await Promise.all(sims.slice(i, i + 50).map((s, k) => enroll(s, m.tokens?.[i + k] ?? '', via, caPem)));
      }
      via.close();
      const enrollMs = performance.now() - enrolling;
      for (const [i, s] of sims.entries()) {
        connect(s);
        // Open streams in bursts, not all in one tick.
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await until(() => sims.every((s) => s.firewall !== ''));
      send({ event: 'synced', enrollMs });
    } else if (m.cmd === 'wait') {
      const prefix = m.prefix ?? '';
      await until(() => sims.every((s) => s.arrived.has(prefix)));
      send({ event: 'arrived', ms: sims.map((s) => s.arrived.get(prefix) ?? NaN) });
    } else if (m.cmd === 'count') {
      const handshakes = sims.map((s) => s.creds?.handshakes() ?? { resumed: 0, full: 0 });
      send({
        event: 'count', streaming: sims.filter((s) => s.streaming).length, endings: Object.fromEntries(endings),
        resumed: handshakes.reduce((n, h) => n + h.resumed, 0), full: handshakes.reduce((n, h) => n + h.full, 0), lagMs: Math.max(heldUpMs, performance.now() - lastTick - TICK_MS),
      });
      endings.clear();
      heldUpMs = 0;
    } else if (m.cmd === 'stop') {
      stopped = true;
      for (const s of sims) s.call?.cancel();
      for (const s of sims) s.client?.close();
      process.exit(0);
    }
  })().catch((err: Error) => send({ event: 'error', message: err.message }));
});
send({ event: 'ready' });
