// The agent's side of Sync: one stream to one controller at a time (a random
// first pick among the configured addresses, then round robin), Hello with
// the versions in force, each update applied through the Applier and
// answered with Ack or Nack, the applied state saved to disk, and when the
// stream ends the next controller after a short jittered pause (Reconnects:
// the exponential backoff grows only once every controller failed in a
// row). Stopping never touches what is applied.
import { create } from '@bufbuild/protobuf';
import type { ChannelCredentials } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { HostnetError, type ServiceClient, createClient } from '../../../proto/grpc/index.js';
import {
  AgentService, type Delta, type ReportHealthResponse, type Snapshot, SnapshotSchema,
  SyncRequestSchema, type SyncResponse,
} from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { ErrorDetailSchema } from '../../../proto/gen/hostnet/v1/errors_pb.js';
import type { HealthReport } from '../../../proto/gen/hostnet/v1/health_pb.js';
import type { AgentCertificate } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import { Reconnects } from './backoff.js';

/** Applies what the controller sends; the composition root wires Firewall and Routing in. */
export interface Applier {
  /** The versions in force (for Hello). */
  versions(): { firewall: string; routing: string; switch?: string };
  /** Applies a full snapshot; throws to refuse it (the error becomes the Nack). */
  applySnapshot(s: Snapshot): Promise<void>;
  /** Applies a delta; throws to refuse it. */
  applyDelta(d: Delta): Promise<void>;
  /** The state now in force, to be saved for the next start. */
  current(): Snapshot;
}

export type SyncState = 'connecting' | 'streaming' | 'backoff' | 'stopped';

export interface SyncClientOptions {
  readonly hostId: string;
  readonly agentVersion: string;
  readonly addresses: readonly string[];
  /** TLS with this host's current certificate (asked at every connect: a renewal takes effect with the next stream). */
  readonly credentials: () => ChannelCredentials;
  readonly applier: Applier;
  readonly log: Logger;
  /** Saves the applied state (write, fsync, rename). */
  readonly save: (s: Snapshot) => Promise<void>;
  readonly random?: () => number;
  readonly onState?: (s: SyncState, detail: string) => void;
  /** Called after each update: applied (error undefined) or refused. */
  readonly onUpdate?: (u: { version: string; kind: 'snapshot' | 'delta'; ms: number; error: Error | undefined }) => void;
}

/** A stream open this long counts as a success for the reconnect backoff. */
const STABLE_MS = 10_000;

type AgentClient = ServiceClient<typeof AgentService.method>;

export class SyncClient {
  private state: SyncState = 'stopped';
  private readonly reconnects: Reconnects;
  private index: number;
  private stopRequested = false;
  private current: { cancel(): void; close(): void; client: AgentClient } | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Updates applied and refused since start. */
  acked = 0;
  nacked = 0;

  constructor(private readonly o: SyncClientOptions) {
    if (o.addresses.length === 0) throw new TypeError('at least one controller address');
    this.index = Math.floor((o.random ?? Math.random)() * o.addresses.length);
    this.reconnects = new Reconnects(o.addresses.length, o.random);
  }

  get status(): SyncState {
    return this.state;
  }

  private setState(s: SyncState, detail: string): void {
    this.state = s;
    this.o.onState?.(s, detail);
  }

  /** Starts the connect / stream / reconnect loop. Idempotent. */
  start(): void {
    if (this.state !== 'stopped') return;
    this.stopRequested = false;
    this.connect();
  }

  private connect(): void {
    if (this.stopRequested) return;
    const address = this.o.addresses[this.index % this.o.addresses.length] as string;
    this.index++;
    this.setState('connecting', address);
    const client = createClient(AgentService, address, this.o.credentials(), {
      'grpc.keepalive_time_ms': 30_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.keepalive_permit_without_calls': 1,
    });
    const call = client.sync();
    const mine = { cancel: () => call.cancel(), close: () => client.close(), client };
    this.current = mine;
    const v = this.o.applier.versions();
    call.write(create(SyncRequestSchema, { message: { case: 'hello', value: {
      hostId: this.o.hostId, agentVersion: this.o.agentVersion, firewallVersion: v.firewall, routingVersion: v.routing, switchVersion: v.switch ?? '',
    } } }));
    let queue = Promise.resolve();
    // The controller answers an accepted Hello with response headers (an up-to-date agent gets no update).
    let streamingSince = 0;
    const accepted = (): void => {
      if (this.current !== mine || this.state === 'streaming') return;
      streamingSince = Date.now();
      this.reconnects.accepted();
      this.setState('streaming', address);
    };
    call.on('metadata', accepted);
    call.on('data', (m: SyncResponse) => {
      accepted();
      // Updates are applied one at a time, in order.
      queue = queue.then(() => this.handle(m, (msg) => { call.write(msg); }));
    });
    const ended = (why: string): void => {
      // Late events of a stream already replaced or stopped change nothing.
      if (this.current !== mine) return;
      this.current = undefined;
      client.close();
      if (this.stopRequested) {
        this.setState('stopped', why);
        return;
      }
      // A stream that lasted a while was a success: start the backoff over.
      if (streamingSince && Date.now() - streamingSince > STABLE_MS) this.reconnects.stable();
      const delay = this.reconnects.next();
      this.setState('backoff', `${why}; retrying in ${delay} ms`);
      this.timer = setTimeout(() => this.connect(), delay);
    };
    call.on('error', (err: unknown) => ended(`stream to ${address} failed: ${HostnetError.from(err).message}`));
    call.on('end', () => ended(`stream to ${address} ended`));
  }

  private async handle(m: SyncResponse, send: (msg: ReturnType<typeof create<typeof SyncRequestSchema>>) => void): Promise<void> {
    const started = performance.now();
    const kind = m.update.case === 'delta' ? 'delta' : 'snapshot';
    try {
      if (m.update.case === 'snapshot') await this.o.applier.applySnapshot(m.update.value);
      else if (m.update.case === 'delta') await this.o.applier.applyDelta(m.update.value);
      await this.o.save(create(SnapshotSchema, this.o.applier.current()));
      this.acked++;
      this.o.onUpdate?.({ version: m.version, kind, ms: performance.now() - started, error: undefined });
      send(create(SyncRequestSchema, { message: { case: 'ack', value: { version: m.version } } }));
    } catch (err) {
      const e = err as Error & { field?: string };
      this.nacked++;
      this.o.log.warn({ version: m.version, err: e.message }, 'refusing an update');
      this.o.onUpdate?.({ version: m.version, kind, ms: performance.now() - started, error: e });
      send(create(SyncRequestSchema, { message: { case: 'nack', value: {
        version: m.version, error: create(ErrorDetailSchema, { reason: e.name || 'APPLY_FAILED', field: e.field ?? '', message: e.message }),
      } } }));
    }
  }

  /**
   * Sends a health report to the controller the stream is open to. Throws
   * when no stream is open (the caller reports again once it is).
   */
  async report(report: HealthReport): Promise<ReportHealthResponse> {
    const c = this.current;
    if (!c || this.state !== 'streaming') throw new Error('not connected to a controller');
    return c.client.reportHealth({ report }, { timeoutMs: 10_000 });
  }

  /** Asks the controller the stream is open to for a new certificate (AgentService.Renew); throws when no stream is open. */
  async renew(csrPem: string): Promise<AgentCertificate | undefined> {
    const c = this.current;
    if (!c || this.state !== 'streaming') throw new Error('not connected to a controller');
    return (await c.client.renew({ csrPem }, { timeoutMs: 10_000 })).certificate;
  }

  /**
   * Ends the stream and opens a new one at once: its Hello tells the
   * controller what is applied now (after a refused update was applied on a
   * retry, say). Does nothing while not connected.
   */
  resync(): void {
    const c = this.current;
    if (!c || this.stopRequested) return;
    this.current = undefined;
    c.cancel();
    c.close();
    this.reconnects.stable();
    this.connect();
  }

  /** Stops the loop and closes the stream. Never touches what is applied. */
  stop(): void {
    this.stopRequested = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const c = this.current;
    this.current = undefined;
    c?.cancel();
    c?.close();
    this.setState('stopped', 'stopped');
  }
}
