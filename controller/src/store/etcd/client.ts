// A small typed etcd v3 client over @grpc/grpc-js, from the part of etcd's
// own API protos the controller uses (proto/etcd). Why not npm `etcd3`: see
// docs/controller.md ("Why our own etcd client"). What it does:
// - every call carries `hasleader: true`, so a member cut off from its
//   cluster's leader refuses instead of answering from its own (stale) state;
// - several endpoints: a call that cannot reach one (or finds no leader
//   there) moves to the next; reads are retried there, writes are not (the
//   store resolves an unknown outcome itself);
// - deadlines on every unary call;
// - watch streams and lease keep-alives are handed out raw: their owners
//   (the store's watcher, the Session) handle reconnects.
import { Metadata, credentials as grpcCredentials, type ChannelCredentials, type ClientDuplexStream, status as Status } from '@grpc/grpc-js';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { HostnetError } from '../../../../proto/grpc/errors.js';
import { createClient, type ServiceClient } from '../../../../proto/grpc/client.js';
import {
  KV, Lease, Maintenance, Watch,
  type LeaseKeepAliveRequest, type LeaseKeepAliveResponse,
  type RangeResponse, type StatusResponse, type TxnRequestSchema, type TxnResponse, type WatchRequest, type WatchResponse,
} from '../../../../proto/gen/etcdserverpb/rpc_pb.js';

type Methods<S> = S extends { method: infer M } ? M : never;

interface Member {
  readonly endpoint: string;
  readonly kv: ServiceClient<Methods<typeof KV>>;
  readonly watch: ServiceClient<Methods<typeof Watch>>;
  readonly lease: ServiceClient<Methods<typeof Lease>>;
  readonly maintenance: ServiceClient<Methods<typeof Maintenance>>;
}

export interface EtcdClientOptions {
  /** host:port of each member. */
  readonly endpoints: readonly string[];
  /** TLS to etcd (insecure when absent: loopback labs only). */
  readonly credentials?: ChannelCredentials;
  /** Deadline of one unary call (default 5 s). */
  readonly callTimeoutMs?: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
export const bytes = (s: string): Uint8Array => encoder.encode(s);
export const text = (b: Uint8Array): string => decoder.decode(b);

/** The end of the range holding every key that starts with `prefix`. Pure. */
export function prefixEnd(prefix: string): Uint8Array {
  const b = bytes(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if ((b[i] as number) < 0xff) {
      const end = b.slice(0, i + 1);
      end[i] = (end[i] as number) + 1;
      return end;
    }
  }
  return new Uint8Array([0]);
}

/** Errors after which another member may do better: unreachable, no leader, overloaded, timed out. */
export function isRetryable(err: unknown): boolean {
  if (!(err instanceof HostnetError)) return false;
  return err.code === Status.UNAVAILABLE || err.code === Status.DEADLINE_EXCEEDED || err.code === Status.RESOURCE_EXHAUSTED
    || /no leader|leader changed|request timed out|too many requests/.test(err.message);
}

/** What to tell a caller when etcd cannot be reached: UNAVAILABLE, naming etcd and the last error. */
export function etcdUnavailable(what: string, cause: unknown): HostnetError {
  const why = cause instanceof Error ? cause.message : String(cause);
  return new HostnetError(Status.UNAVAILABLE, {
    reason: 'STORE_UNAVAILABLE',
    message: `${what}: the store (etcd) cannot be reached or has no leader (${why.slice(0, 200)}); try again or another controller replica`,
  }, { cause });
}

export class EtcdClient {
  private readonly members: Member[];
  private current = 0;
  private readonly timeoutMs: number;

  constructor(options: EtcdClientOptions) {
    if (options.endpoints.length === 0) throw new TypeError('etcd: no endpoints');
    const creds = options.credentials ?? grpcCredentials.createInsecure();
    // Large listings (a whole fleet's hosts) come back in one response.
    const channel = { 'grpc.max_receive_message_length': 64 << 20, 'grpc.keepalive_time_ms': 10_000, 'grpc.keepalive_timeout_ms': 5000 };
    this.members = options.endpoints.map((endpoint) => ({
      endpoint,
      kv: createClient(KV, endpoint, creds, channel),
      watch: createClient(Watch, endpoint, creds, channel),
      lease: createClient(Lease, endpoint, creds, channel),
      maintenance: createClient(Maintenance, endpoint, creds, channel),
    }));
    this.timeoutMs = options.callTimeoutMs ?? 5000;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.endpoint);
  }

  /** The member calls go to now. */
  get endpoint(): string {
    return (this.members[this.current] as Member).endpoint;
  }

  /** Moves to the next member (after a failure on this one). */
  rotate(): void {
    this.current = (this.current + 1) % this.members.length;
  }

  private member(): Member {
    return this.members[this.current] as Member;
  }

  /** Call metadata: leader required. */
  static metadata(): Metadata {
    const m = new Metadata();
    m.set('hasleader', 'true');
    return m;
  }

  private opts(timeoutMs = this.timeoutMs): { timeoutMs: number; metadata: Metadata } {
    return { timeoutMs, metadata: EtcdClient.metadata() };
  }

  /** Runs an idempotent call, moving through the members on retryable errors until `budgetMs` is spent. */
  private async retrying<T>(call: (m: Member) => Promise<T>, budgetMs = this.timeoutMs * 2): Promise<T> {
    const until = Date.now() + budgetMs;
    let tries = 0;
    for (;;) {
      try {
        return await call(this.member());
      } catch (err) {
        tries++;
        if (!isRetryable(err) || Date.now() >= until) throw err;
        this.rotate();
        // Every member tried once: a short pause before the next round.
        if (tries % this.members.length === 0) await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** A linearizable read of [key, rangeEnd) (or of key alone), at `revision` (0: newest). */
  range(key: Uint8Array, rangeEnd?: Uint8Array, options: { revision?: number; limit?: number; countOnly?: boolean; budgetMs?: number } = {}): Promise<RangeResponse> {
    return this.retrying((m) => m.kv.range({
      key, ...(rangeEnd ? { rangeEnd } : {}), revision: BigInt(options.revision ?? 0), limit: BigInt(options.limit ?? 0), countOnly: options.countOnly ?? false,
    }, this.opts()), options.budgetMs);
  }

  /** One transaction, one attempt (an error leaves its outcome unknown). */
  txn(request: MessageInitShape<typeof TxnRequestSchema>): Promise<TxnResponse> {
    const m = this.member();
    return m.kv.txn(request, this.opts()).catch((err: unknown) => {
      if (isRetryable(err)) this.rotate();
      throw err;
    });
  }

  /** Compacts the history up to `revision` (waits until the member applied it). */
  async compact(revision: number): Promise<void> {
    await this.retrying((m) => m.kv.compact({ revision: BigInt(revision), physical: true }, this.opts(30_000)), 30_000);
  }

  async leaseGrant(ttlSeconds: number): Promise<bigint> {
    const r = await this.retrying((m) => m.lease.leaseGrant({ ttl: BigInt(ttlSeconds) }, this.opts()));
    if (r.error) throw new HostnetError(Status.UNAVAILABLE, { reason: 'STORE_UNAVAILABLE', message: `etcd refused a lease: ${r.error}` });
    return r.id;
  }

  async leaseRevoke(id: bigint): Promise<void> {
    await this.retrying((m) => m.lease.leaseRevoke({ id }, this.opts()), this.timeoutMs);
  }

  /** A lease keep-alive stream on the current member. */
  keepAliveStream(): ClientDuplexStream<LeaseKeepAliveRequest, LeaseKeepAliveResponse> {
    return this.member().lease.leaseKeepAlive({ metadata: EtcdClient.metadata() });
  }

  /** A watch stream on the current member (leader required: etcd ends it when its member loses the leader). */
  watchStream(): ClientDuplexStream<WatchRequest, WatchResponse> {
    return this.member().watch.watch({ metadata: EtcdClient.metadata() });
  }

  /** One member's status (which member leads, its revision). */
  status(endpoint: string): Promise<StatusResponse> {
    const m = this.members.find((x) => x.endpoint === endpoint);
    if (!m) throw new TypeError(`etcd: ${endpoint} is not one of the endpoints`);
    return m.maintenance.status({}, { timeoutMs: this.timeoutMs });
  }

  close(): void {
    for (const m of this.members) {
      m.kv.close();
      m.watch.close();
      m.lease.close();
      m.maintenance.close();
    }
  }
}
