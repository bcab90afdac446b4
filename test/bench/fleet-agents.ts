// Simulated agents for the fleet benchmark, in a process of their own (so
// that the controllers' RSS is theirs alone): raw Sync streams sharing a few
// channels, each agent ACKing what it gets, remembering the versions it has
// (its Hello after a reconnect names them, as the real agent's does) and
// reconnecting to the next controller the way the agent does (Reconnects).
// Driven over the fork IPC channel:
//   { cmd: 'start', hosts, addresses }       -> { event: 'synced' } once every agent has its first update
//   { cmd: 'wait', prefix, since }           -> { event: 'arrived', ms: [...] } once every agent has the prefix
//   { cmd: 'count' }                         -> { event: 'count', streaming, upToDate }
//   { cmd: 'stop' }
import { create } from '@bufbuild/protobuf';
import { credentials } from '@grpc/grpc-js';
import { createClient } from '../../proto/grpc/index.js';
import { AgentService, SyncRequestSchema, type SyncResponse } from '../../proto/gen/hostnet/v1/agent_pb.js';
import { Reconnects } from '../../agent/src/sync/backoff.js';

type Client = ReturnType<typeof createClient<typeof AgentService.method>>;
const PER_CHANNEL = 500;
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
}

const channels = new Map<string, Client[]>();
const sims: Sim[] = [];
let addresses: string[] = [];
let stopped = false;

function channel(address: string, i: number): Client {
  let list = channels.get(address);
  if (!list) channels.set(address, (list = []));
  const k = Math.floor(i / PER_CHANNEL);
  list[k] ??= createClient(AgentService, address, credentials.createInsecure(), {
    'grpc.use_local_subchannel_pool': 1, 'grpc.channel_id': k, 'grpc.max_receive_message_length': 64 << 20,
  });
  return list[k];
}

function connect(s: Sim, i: number): void {
  if (stopped) return;
  const call = channel(addresses[s.address % addresses.length] as string, i).sync();
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
    s.streaming = false;
    s.address++;
    setTimeout(() => connect(s, i), s.reconnects.next());
  };
  call.on('error', again);
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
  const m = raw as { cmd: string; hosts?: string[]; addresses?: string[]; prefix?: string; first?: number };
  void (async () => {
    if (m.cmd === 'start') {
      addresses = m.addresses ?? [];
      for (const [i, hostId] of (m.hosts ?? []).entries()) {
        const s: Sim = {
          hostId, firewall: '', routing: '', streaming: false, since: 0, reconnects: new Reconnects(addresses.length), address: (m.first ?? 0) + i, arrived: new Map(), call: undefined,
        };
        sims.push(s);
        connect(s, i);
        // Open streams in bursts, not all in one tick.
        if (i % 500 === 499) await new Promise((r) => setImmediate(r));
      }
      await until(() => sims.every((s) => s.firewall !== ''));
      send({ event: 'synced' });
    } else if (m.cmd === 'wait') {
      const prefix = m.prefix ?? '';
      await until(() => sims.every((s) => s.arrived.has(prefix)));
      send({ event: 'arrived', ms: sims.map((s) => s.arrived.get(prefix) ?? NaN) });
    } else if (m.cmd === 'count') {
      send({ event: 'count', streaming: sims.filter((s) => s.streaming).length });
    } else if (m.cmd === 'stop') {
      stopped = true;
      for (const s of sims) s.call?.cancel();
      for (const list of channels.values()) for (const c of list) c.close();
      process.exit(0);
    }
  })().catch((err: Error) => send({ event: 'error', message: err.message }));
});
send({ event: 'ready' });
