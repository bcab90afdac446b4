// Everything under one etcd key prefix, kept current: list, then watch from
// the listed revision + 1; relist when etcd says that revision was compacted
// away; reconnect (to the next member) when the stream ends, errs, or goes
// silent. Liveness: a progress request every `progressMs`; a stream that
// answers none of three in a row is dead. The owner gets a full listing
// (reset), events grouped by revision, and progress (a revision the feed is
// complete up to).
import type { Logger } from '../../../../common/log.js';
import type { Event, KeyValue } from '../../../../proto/gen/mvccpb/kv_pb.js';
import { create } from '@bufbuild/protobuf';
import { type WatchResponse, WatchRequestSchema } from '../../../../proto/gen/etcdserverpb/rpc_pb.js';
import { type EtcdClient, bytes, prefixEnd, text } from './client.js';

export interface FeedHandlers {
  /** Everything under the prefix at `revision` (the first listing, and every relist). */
  reset(kvs: readonly KeyValue[], revision: number, why: 'start' | 'compacted'): void;
  /** The events of one revision, in order. */
  events(revision: number, events: readonly Event[]): void;
  /** Nothing more happened under the prefix up to `revision`. */
  progress(revision: number): void;
  /** The feed is current (watching) or not (reconnecting, relisting). */
  live(live: boolean, why: string): void;
}

const PAGE = 2000;
const PROGRESS = create(WatchRequestSchema, { requestUnion: { case: 'progressRequest', value: {} } });

export class PrefixFeed {
  private rev = 0;
  private stopped = false;
  private needList = true;
  private stream: ReturnType<EtcdClient['watchStream']> | undefined;
  private running: Promise<void> | undefined;
  /** Relists after a compaction, for metrics and tests. */
  relists = 0;

  constructor(
    private readonly client: EtcdClient,
    private readonly prefix: string,
    private readonly handlers: FeedHandlers,
    private readonly log: Logger,
    private readonly progressMs = 1000,
  ) {}

  /** The revision everything under the prefix is known up to. */
  get revision(): number {
    return this.rev;
  }

  /** Lists (throws when etcd cannot be reached within the client's retry budget), then keeps watching in the background. */
  async start(): Promise<void> {
    await this.list('start');
    this.running = this.loop();
  }

  /** Asks the watch for a progress notification now (a waiter needs to know it has seen everything up to a revision). */
  requestProgress(): void {
    this.stream?.write(PROGRESS);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stream?.cancel();
    await this.running;
  }

  private async list(why: 'start' | 'compacted'): Promise<void> {
    const end = prefixEnd(this.prefix);
    const kvs: KeyValue[] = [];
    let first = await this.client.range(bytes(this.prefix), end, { limit: PAGE });
    const revision = Number(first.header?.revision ?? 0n);
    kvs.push(...first.kvs);
    while (first.more && first.kvs.length > 0) {
      const last = first.kvs[first.kvs.length - 1] as KeyValue;
      first = await this.client.range(new Uint8Array([...last.key, 0]), end, { limit: PAGE, revision });
      kvs.push(...first.kvs);
    }
    this.rev = revision;
    this.needList = false;
    this.handlers.reset(kvs, revision, why);
  }

  private async loop(): Promise<void> {
    let backoff = 100;
    while (!this.stopped) {
      if (this.needList) {
        try {
          await this.list('compacted');
          this.relists++;
        } catch (err) {
          this.log.warn({ err, prefix: this.prefix }, 'etcd: relisting failed; retrying');
          await new Promise((r) => setTimeout(r, backoff));
          backoff = Math.min(backoff * 2, 2000);
          continue;
        }
      }
      const healthy = await this.watchOnce();
      if (this.stopped) break;
      if (healthy) backoff = 100;
      this.client.rotate();
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  /** One watch stream until it ends. Returns whether it delivered anything (a healthy stream that ended). */
  private watchOnce(): Promise<boolean> {
    return new Promise((resolve) => {
      const stream = this.client.watchStream();
      this.stream = stream;
      /** Progress requests sent since the stream last said anything. */
      let unanswered = 0;
      let delivered = false;
      let done = false;
      const finish = (why: string): void => {
        if (done) return;
        done = true;
        clearInterval(timer);
        this.stream = undefined;
        stream.cancel();
        this.handlers.live(false, why);
        resolve(delivered);
      };
      // Silent: three progress requests in a row unanswered (so three intervals at least). Counting
      // the requests, not the time: a replica whose event loop is starved (10,000 agents' TLS
      // handshakes after a restart) runs this timer before it reads the answer waiting in its socket,
      // and each run of the timer is followed by a round of reading, so three unanswered requests mean
      // three chances to read an answer. By the clock alone, that replica took the store for lost and
      // turned every agent away (docs/benchmarks.md, 2026-12-03).
      const timer = setInterval(() => {
        if (unanswered >= 3) {
          this.log.warn({ prefix: this.prefix, endpoint: this.client.endpoint }, 'etcd: the watch went silent; reconnecting');
          finish('the watch went silent');
          return;
        }
        stream.write(PROGRESS);
        unanswered++;
      }, this.progressMs);
      stream.on('data', (r: WatchResponse) => {
        unanswered = 0;
        if (r.created) {
          delivered = true;
          this.handlers.live(true, 'watching');
          return;
        }
        if (r.canceled) {
          if (r.compactRevision > 0n) {
            this.log.warn({ prefix: this.prefix, from: this.rev + 1, compacted: Number(r.compactRevision) }, 'etcd: the watch fell behind a compaction; relisting');
            this.needList = true;
          }
          finish(`watch cancelled: ${r.cancelReason || (r.compactRevision > 0n ? 'compacted' : 'no reason')}`);
          return;
        }
        if (r.events.length === 0) {
          const rev = Number(r.header?.revision ?? 0n);
          if (rev > this.rev) this.rev = rev;
          this.handlers.progress(this.rev);
          return;
        }
        let start = 0;
        for (let i = 1; i <= r.events.length; i++) {
          const at = (e: Event | undefined) => Number(e?.kv?.modRevision ?? 0n);
          if (i < r.events.length && at(r.events[i]) === at(r.events[start])) continue;
          const rev = at(r.events[start]);
          this.handlers.events(rev, r.events.slice(start, i));
          if (rev > this.rev) this.rev = rev;
          start = i;
        }
      });
      stream.on('error', (err: Error) => {
        // After finish() cancelled the stream itself, its CANCELLED is not news.
        if (!this.stopped && !done) this.log.warn({ err: { message: err.message }, prefix: this.prefix, endpoint: this.client.endpoint }, 'etcd: the watch failed; reconnecting');
        finish(err.message);
      });
      stream.on('end', () => finish('the watch ended'));
      stream.write(create(WatchRequestSchema, { requestUnion: { case: 'createRequest', value: {
        key: bytes(this.prefix), rangeEnd: prefixEnd(this.prefix), startRevision: BigInt(this.rev + 1), progressNotify: true,
      } } }));
    });
  }
}

/** The part of `key` after `prefix`, or undefined when it is not under it. */
export function under(prefix: string, key: Uint8Array): string | undefined {
  const k = text(key);
  return k.startsWith(prefix) ? k.slice(prefix.length) : undefined;
}
