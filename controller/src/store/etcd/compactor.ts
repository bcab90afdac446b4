// etcd keeps every revision until compacted. One replica compacts, the one
// holding <prefix>compactor (a key bound to its session lease: when it dies
// the claim goes with it and another replica takes over). Every `everyMs`
// the holder compacts to the revision it noted the round before, so at least
// one round of history stays for watches that reconnect.
import type { Logger } from '../../../../common/log.js';
import { Compare_CompareResult, Compare_CompareTarget } from '../../../../proto/gen/etcdserverpb/rpc_pb.js';
import { type EtcdClient, bytes, text } from './client.js';
import type { Session } from './session.js';

export class Compactor {
  private timer: NodeJS.Timeout | undefined;
  private noted = 0;
  /** Compactions done by this replica, for metrics and tests. */
  compactions = 0;

  constructor(
    private readonly client: EtcdClient,
    private readonly session: Session,
    private readonly replica: string,
    private readonly log: Logger,
    private readonly everyMs: number,
    private readonly key = '/hostnet/v1/compactor',
  ) {}

  start(): void {
    this.timer = setInterval(() => { void this.round(); }, this.everyMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Whether this replica holds the claim (taking it when free). */
  async claim(): Promise<boolean> {
    const lease = this.session.lease;
    if (lease === undefined) return false;
    const key = bytes(this.key);
    const r = await this.client.txn({
      compare: [{ key, result: Compare_CompareResult.EQUAL, target: Compare_CompareTarget.CREATE, targetUnion: { case: 'createRevision', value: 0n } }],
      success: [{ request: { case: 'requestPut', value: { key, value: bytes(this.replica), lease } } }],
      failure: [{ request: { case: 'requestRange', value: { key } } }],
    });
    if (r.succeeded) return true;
    const held = r.responses[0]?.response.case === 'responseRange' ? r.responses[0].response.value.kvs[0] : undefined;
    return held !== undefined && text(held.value) === this.replica && held.lease === lease;
  }

  /** One round: when holding the claim, compacts to the revision noted last round and notes the current one. */
  async round(): Promise<void> {
    try {
      if (!(await this.claim())) {
        this.noted = 0;
        return;
      }
      const now = Number((await this.client.range(bytes(this.key), undefined, { countOnly: true })).header?.revision ?? 0n);
      if (this.noted > 0 && this.noted < now) {
        await this.client.compact(this.noted);
        this.compactions++;
        this.log.info({ revision: this.noted }, 'etcd: history compacted');
      }
      this.noted = now;
    } catch (err) {
      // Compacted already (another holder, a test) or etcd away: next round.
      this.log.warn({ err: { message: (err as Error).message } }, 'etcd: compaction round failed');
    }
  }
}
