// The ToR agents' side of Sync: a switch's agent says Hello with the
// switch's name (its certificate names it, as a host's names the host) and
// gets its switch's compiled frr.conf as a snapshot, again whenever a change
// of the store changes that text (a host deployed on one of its ports,
// released, re-addressed; the switch itself edited), one update in flight
// at a time, answered with Ack or Nack like a host's. The switches' rollout
// (applied, refused) and connection go to the status store with the hosts'
// (through `shared`), so every replica shows them. A released host's
// addresses are held (store kind "released") until every switch it was
// cabled to has acknowledged a configuration compiled after the release; the
// replica that sees the last of those Acks ends the release.
import { create } from '@bufbuild/protobuf';
import { status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { HostnetError } from '../../../proto/grpc/errors.js';
import type { Outgoing } from '../../../proto/grpc/server.js';
import { type SyncRequest, type SyncResponse, SyncResponseSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { ErrorDetail } from '../../../proto/gen/hostnet/v1/errors_pb.js';
import type { ChangeBatch, Store } from '../store/store.js';
import { compileSwitch, hostsBySwitch } from '../switches.js';
import type { Host } from '../../../proto/gen/hostnet/v1/resources_pb.js';

/** A switch's rollout, from this replica's stream or the one another replica wrote. */
export interface SwitchRollout {
  readonly name: string;
  readonly desiredVersion: string;
  readonly appliedVersion: string;
  readonly nackedVersion: string;
  readonly nackError: string;
  readonly connected: boolean;
  /** The replica its ToR agent streams to, when connected. */
  readonly replica: string | undefined;
}

/** How switch rollout and connections are shared with the other replicas (the agents' side's status batches). */
export interface SharedStatus {
  readonly replica: string;
  /** A switch's rollout changed here. */
  rollout(name: string, r: { readonly applied: string; readonly nacked: string; readonly error: string }): void;
  /** A switch's stream opened or closed here. */
  connection(name: string): void;
  /** What another replica wrote of a switch. */
  remote(name: string): { replica?: string | undefined; applied?: string; nacked?: string; error?: string };
}

interface SwitchSession {
  readonly name: string;
  write(m: SyncResponse): void;
  applied: string;
  inFlight: string | undefined;
  /** The store revision the update in flight was compiled at. */
  inFlightAt: number;
  readonly since: Date;
  refused: string;
  end(err: HostnetError): void;
}

/**
 * Reads a stream's requests until it ends or `end` is called (which rejects
 * the read in progress and every later one: no promise raced per message).
 */
export function reader<T>(it: AsyncIterator<T>): { next: () => Promise<IteratorResult<T>>; end: (err: HostnetError) => void } {
  let endedWith: HostnetError | undefined;
  let stopRead: ((err: HostnetError) => void) | undefined;
  return {
    next: () => new Promise<IteratorResult<T>>((resolve, reject) => {
      if (endedWith) {
        reject(endedWith);
        return;
      }
      stopRead = reject;
      it.next().then(resolve, reject);
    }),
    end: (err) => {
      endedWith ??= err;
      stopRead?.(endedWith);
    },
  };
}

export class SwitchSessions {
  private readonly sessions = new Map<string, SwitchSession>();
  private readonly rollouts = new Map<string, { desired: string; applied: string; nacked: string; error: string }>();
  /** Per switch, the store revision of the configuration its agent last acknowledged (or had, when it said Hello). */
  private readonly appliedAt = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private settling: Promise<void> | undefined;

  constructor(private readonly store: Store, private readonly log: Logger, private readonly debounceMs = 50, private readonly shared?: SharedStatus) {}

  /** The switches whose stream is open here. */
  names(): string[] {
    return [...this.sessions.keys()];
  }

  /** Since when a switch's stream is open here, if it is. */
  since(name: string): Date | undefined {
    return this.sessions.get(name)?.since;
  }

  /** Serves one ToR agent's stream until it ends. */
  async serve(name: string, switchVersion: string, stream: { write(m: Outgoing<typeof SyncResponseSchema>): unknown }, it: AsyncIterator<SyncRequest>): Promise<void> {
    const read = reader(it);
    const session: SwitchSession = { name, write: (m) => { stream.write(m); }, applied: switchVersion, inFlight: undefined, inFlightAt: 0, since: new Date(), refused: '', end: read.end };
    this.sessions.get(name)?.end(new HostnetError(Status.ABORTED, { reason: 'REPLACED', message: 'a newer Sync stream of this switch replaced this one' }));
    this.sessions.set(name, session);
    this.shared?.connection(name);
    const r = this.track(name);
    r.applied = switchVersion;
    this.shared?.rollout(name, r);
    const sw = this.store.get('switch', name);
    // Up to date already: what it has reflects every release so far.
    if (sw && compileSwitch(this.store, sw.value).version === switchVersion) this.acknowledged(name, this.store.revision());
    this.pump(session);
    try {
      for (let n = await read.next(); !n.done; n = await read.next()) {
        const m = n.value.message;
        if ((m.case === 'ack' || m.case === 'nack') && session.inFlight === m.value.version) {
          session.inFlight = undefined;
          if (m.case === 'ack') {
            session.applied = m.value.version;
            Object.assign(r, { applied: m.value.version, nacked: '', error: '' });
            this.acknowledged(name, session.inFlightAt);
          } else {
            session.refused = m.value.version;
            Object.assign(r, { nacked: m.value.version, error: describe(m.value.error) });
            this.log.warn({ switch: name, version: m.value.version, error: r.error }, 'ToR agent refused its configuration');
          }
          this.shared?.rollout(name, r);
          this.pump(session);
        }
      }
    } finally {
      if (this.sessions.get(name) === session) {
        this.sessions.delete(name);
        this.shared?.connection(name);
      }
    }
  }

  /** A committed batch: the connected switches' configurations are compiled again a little later. */
  changed(b: ChangeBatch): void {
    if (!b.relist && !b.changes.some((c) => c.kind === 'host' || c.kind === 'switch' || c.kind === 'catalog')) return;
    for (const c of b.changes) if (c.kind === 'switch' && c.op === 'delete') this.rollouts.delete(c.key);
    if (this.timer || this.sessions.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const index = hostsBySwitch(this.store);
      for (const s of this.sessions.values()) this.pump(s, index);
    }, this.debounceMs);
  }

  private track(name: string): { desired: string; applied: string; nacked: string; error: string } {
    let r = this.rollouts.get(name);
    if (!r) {
      r = { desired: '', applied: '', nacked: '', error: '' };
      this.rollouts.set(name, r);
    }
    return r;
  }

  /** Sends the switch its configuration when it lacks it and nothing is in flight. */
  private pump(s: SwitchSession, index?: Map<string, Host[]>): void {
    const sw = this.store.get('switch', s.name);
    if (!sw) {
      s.end(new HostnetError(Status.NOT_FOUND, { reason: 'NOT_FOUND', resource: `switch/${s.name}`, message: `switch/${s.name} is not known to this controller` }));
      return;
    }
    const c = compileSwitch(this.store, sw.value, index);
    this.track(s.name).desired = c.version;
    if (s.inFlight || s.applied === c.version || s.refused === c.version) return;
    s.inFlight = c.version;
    s.inFlightAt = this.store.revision();
    s.write(create(SyncResponseSchema, {
      version: c.version,
      update: { case: 'snapshot', value: { switchConfig: { version: c.version, switchName: s.name, frrConf: c.frrConf } } },
    }));
  }

  private acknowledged(name: string, revision: number): void {
    this.appliedAt.set(name, Math.max(revision, this.appliedAt.get(name) ?? 0));
    this.settling ??= this.settle().catch((err: unknown) => { this.log.warn({ err }, 'cannot end a release; the next Ack retries'); })
      .finally(() => { this.settling = undefined; });
  }

  /** Ends the releases every switch of which has applied a configuration compiled after them. */
  private async settle(): Promise<void> {
    const done = this.store.list('released').filter((r) => r.value.switchPorts.every((p) => !this.store.get('switch', p.switchName)
      || (this.appliedAt.get(p.switchName) ?? 0) >= r.revision));
    if (done.length === 0) return;
    await this.store.transact((tx) => {
      for (const r of done) if (tx.get('released', r.key)?.revision === r.revision) tx.delete('released', r.key);
    });
    this.log.info({ hosts: done.map((r) => r.key) }, 'released: every switch applied it; the addresses are free');
  }

  /** Every switch's rollout, by name (`desired`: the versions, when the caller compiled them already). */
  states(desired?: ReadonlyMap<string, string>): SwitchRollout[] {
    const index = desired ? undefined : hostsBySwitch(this.store);
    return this.store.list('switch').map(({ key, value }) => {
      const here = this.sessions.has(key);
      const remote = here ? undefined : this.shared?.remote(key);
      // Its stream here, or the other replica's record (also the last known one of a switch connected nowhere now).
      const r = here || !remote?.applied ? this.rollouts.get(key) : { applied: remote.applied, nacked: remote.nacked ?? '', error: remote.error ?? '' };
      return {
        name: key, desiredVersion: desired?.get(key) ?? compileSwitch(this.store, value, index).version, appliedVersion: r?.applied ?? '', nackedVersion: r?.nacked ?? '', nackError: r?.error ?? '',
        connected: here || Boolean(remote?.replica), replica: here ? this.shared?.replica : remote?.replica,
      };
    });
  }

  endAll(err: HostnetError): void {
    for (const s of this.sessions.values()) s.end(err);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}

const describe = (e: ErrorDetail | undefined): string => e?.message ?? 'the agent gave no reason';
