// A replica's etcd session: one lease, kept alive a third of its TTL at a
// time. Keys that must vanish with the replica (the agents connected to it,
// the compactor's claim) are attached to it. When the lease is lost (etcd out
// of reach for longer than the TTL), a new one is granted and the owner is
// told to put its keys again.
import { create } from '@bufbuild/protobuf';
import type { Logger } from '../../../../common/log.js';
import { LeaseKeepAliveRequestSchema, type LeaseKeepAliveResponse } from '../../../../proto/gen/etcdserverpb/rpc_pb.js';
import type { EtcdClient } from './client.js';

export class Session {
  private id: bigint | undefined;
  private stopped = false;
  private running: Promise<void> | undefined;
  private stream: ReturnType<EtcdClient['keepAliveStream']> | undefined;
  private readonly listeners = new Set<(lease: bigint) => void>();
  /** When the lease was last renewed (ms since the epoch). */
  private renewed = 0;

  constructor(
    private readonly client: EtcdClient,
    private readonly ttlSeconds: number,
    private readonly log: Logger,
  ) {}

  /** The lease (undefined while none is held). */
  get lease(): bigint | undefined {
    return this.id;
  }

  /** Whether the lease was renewed within its TTL (the replica's keys are there). */
  get alive(): boolean {
    return this.id !== undefined && Date.now() - this.renewed < this.ttlSeconds * 1000;
  }

  /** Calls `fn` with every new lease (after one was lost). */
  onNewLease(fn: (lease: bigint) => void): void {
    this.listeners.add(fn);
  }

  /** Grants the first lease (throws when etcd cannot be reached), then keeps it alive in the background. */
  async start(): Promise<void> {
    this.id = await this.client.leaseGrant(this.ttlSeconds);
    this.renewed = Date.now();
    this.running = this.loop();
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      if (!this.alive) {
        // Lost (or never renewed in time): a new lease, and the owners put their keys again.
        try {
          this.id = await this.client.leaseGrant(this.ttlSeconds);
          this.renewed = Date.now();
          this.log.warn({ lease: this.id.toString(16) }, 'etcd: the session lease was lost; a new one is held');
          for (const fn of this.listeners) fn(this.id);
        } catch (err) {
          this.log.warn({ err: { message: (err as Error).message } }, 'etcd: cannot grant a session lease; retrying');
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
      }
      await this.keepAlive();
      if (!this.stopped) {
        this.client.rotate();
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /** One keep-alive stream until it fails or the lease expires. */
  private keepAlive(): Promise<void> {
    return new Promise((resolve) => {
      const id = this.id as bigint;
      const stream = this.client.keepAliveStream();
      this.stream = stream;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearInterval(timer);
        this.stream = undefined;
        stream.cancel();
        resolve();
      };
      const ping = (): void => {
        if (!this.alive) {
          finish();
          return;
        }
        stream.write(create(LeaseKeepAliveRequestSchema, { id }));
      };
      const timer = setInterval(ping, Math.max(200, (this.ttlSeconds * 1000) / 3));
      stream.on('data', (r: LeaseKeepAliveResponse) => {
        if (r.ttl <= 0n) {
          this.renewed = 0;
          this.log.warn({ lease: id.toString(16) }, 'etcd: the session lease expired');
          finish();
          return;
        }
        this.renewed = Date.now();
      });
      stream.on('error', () => finish());
      stream.on('end', () => finish());
      ping();
    });
  }

  /** Stops renewing and revokes the lease (its keys go at once). */
  async close(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    await this.running;
    if (this.id !== undefined) await this.client.leaseRevoke(this.id).catch(() => undefined);
  }
}
