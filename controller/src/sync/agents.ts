// The agents' side of the controller: desired state per host (compiled from
// the store, recompiled ~50 ms after a change), one Sync stream per agent with
// at most one un-acknowledged update in flight (a newer desired state simply
// replaces what was waiting), deltas when the agent's version is known,
// snapshots otherwise, and the rollout state per host (sent, applied,
// refused with the agent's error). Identical updates are encoded once.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { HostnetError, invalidArgument, permissionDenied } from '../../../proto/grpc/errors.js';
import { PreEncoded } from '../../../proto/grpc/definition.js';
import type { CallContext, Outgoing, ServiceImpl } from '../../../proto/grpc/server.js';
import {
  type AgentService, type SyncRequest, SyncResponseSchema,
} from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { FirewallPolicy, RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type ErrorDetail, ErrorDetailSchema } from '../../../proto/gen/hostnet/v1/errors_pb.js';
import type { HealthReport } from '../../../proto/gen/hostnet/v1/health_pb.js';
import { type HostRollout, HostRolloutSchema } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type CompileCache, type CompileOptions, compileFirewall, compileRouting } from '../compile.js';
import type { ChangeBatch, Store } from '../store/store.js';
import type { StatusStore } from '../store/status.js';
import { affectedHosts } from './affected.js';
import { firewallDelta } from './delta.js';

type Methods = typeof AgentService extends { method: infer M } ? M : never;

interface Desired {
  readonly firewall: FirewallPolicy;
  readonly routing: RoutingIntent;
  /** The update version agents acknowledge: both content versions. */
  readonly version: string;
  /** The host's subnet and tenant, for the dashboard (kept here so requests need no database read). */
  readonly subnet: string;
  readonly tenant: string;
}

/** What the controller knows of one host's rollout (GetRollout's HostRollout, kept mutable in memory). */
export interface RolloutState {
  hostId: string;
  desiredVersion: string;
  sentVersion: string;
  appliedVersion: string;
  nackedVersion: string;
  nackError: ErrorDetail | undefined;
  connected: boolean;
  updatedAt: Date;
}

interface Session {
  readonly hostId: string;
  readonly write: (m: Outgoing<typeof SyncResponseSchema>) => void;
  /** What the agent has applied (from Hello, then from Acks). */
  applied: { firewall: string; routing: string };
  /** The (rollout) version this agent refused on this stream: not resent until something newer exists. */
  refused: string;
  /** The update on the wire: `wire` is what the agent echoes in Ack/Nack. */
  inFlight: { wire: string; firewall: FirewallPolicy; routing: RoutingIntent } | undefined;
  /** Ends the stream from the controller's side with `err` as its status (idempotent). */
  readonly end: (err: HostnetError) => void;
}

export interface AgentsDeps {
  readonly store: Store;
  /** Where rollout state is kept. */
  readonly status: StatusStore;
  readonly log: Logger;
  readonly compile?: CompileOptions;
  /** Recompile this long after a store change (changes in between coalesce). */
  readonly debounceMs?: number;
  /** Identity from the TLS client certificate, when client certificates are required. */
  readonly peerHostId?: (ctx: CallContext) => string | undefined;
  readonly heartbeatSeconds?: number;
  /** How often changed rollout state is written to the store (in one batch). */
  readonly rolloutFlushMs?: number;
}

const versionOf = (fw: FirewallPolicy, rt: RoutingIntent): string => `${fw.version}.${rt.version}`;

const unknownHost = (hostId: string, field: string): HostnetError => new HostnetError(Status.NOT_FOUND, {
  reason: 'NOT_FOUND', resource: `host/${hostId}`, field, message: `host/${hostId} is not known to this controller`,
});
/** Firewall versions kept per host as delta bases (besides the one a connected agent has). */
const HISTORY = 8;

export class Agents {
  private readonly desired = new Map<string, Desired>();
  /** Recent firewall policies per host by version: the bases deltas are computed from. */
  private readonly history = new Map<string, Map<string, FirewallPolicy>>();
  private readonly sessions = new Map<string, Session>();
  private readonly rollouts = new Map<string, RolloutState>();
  readonly health = new Map<string, { report: HealthReport; received: Date }>();
  private timer: NodeJS.Timeout | undefined;
  /** Hosts to compile at the next pass ('all' after a relist). */
  private pending: Set<string> | 'all' = new Set();
  /** Hosts whose rollout changed since the last batch was written. */
  private readonly dirty = new Set<string>();
  private readonly flushTimer: NodeJS.Timeout;
  private unwatch: (() => void) | undefined;
  /** Encodes done, for tests and metrics: identical updates count once. */
  encodes = 0;
  /** Host compilations done, for tests and metrics: a change compiles only the hosts it touches. */
  compilations = 0;

  private constructor(private readonly deps: AgentsDeps) {
    this.flushTimer = setInterval(() => { void this.flush(); }, deps.rolloutFlushMs ?? 1000);
    this.flushTimer.unref();
  }

  /**
   * The agents' side of a store: the rollout state it kept, every host
   * compiled, and from then on the store's change feed (a write on any
   * replica) recompiling the hosts each change touches, ~50 ms later.
   */
  static async open(deps: AgentsDeps): Promise<Agents> {
    const a = new Agents(deps);
    for (const row of await deps.status.loadRollout()) {
      a.rollouts.set(row.hostId, {
        hostId: row.hostId, desiredVersion: '', sentVersion: row.sentVersion, appliedVersion: row.appliedVersion,
        nackedVersion: row.nackedVersion, nackError: row.nackError ? fromBinary(ErrorDetailSchema, row.nackError) : undefined,
        connected: false, updatedAt: row.updatedAt,
      });
    }
    a.recompile('all');
    a.unwatch = deps.store.watch(deps.store.revision(), (b) => a.onBatch(b));
    return a;
  }

  /** Writes the rollout of the hosts that changed since the last batch. Never throws (a failure is logged). */
  flush(): Promise<void> {
    if (this.dirty.size === 0) return Promise.resolve();
    const deleted = [...this.dirty].filter((id) => !this.rollouts.has(id));
    const rows = [...this.dirty].flatMap((id) => {
      const r = this.rollouts.get(id);
      return r ? [{
        hostId: id, sentVersion: r.sentVersion, appliedVersion: r.appliedVersion, nackedVersion: r.nackedVersion,
        nackError: r.nackError ? toBinary(ErrorDetailSchema, r.nackError) : undefined, updatedAt: r.updatedAt,
      }] : [];
    });
    const batch = [...this.dirty];
    this.dirty.clear();
    return this.deps.status.saveRollout(rows, deleted).catch((err: unknown) => {
      // Kept for the next batch: the rows are the latest state, whenever they land.
      for (const id of batch) this.dirty.add(id);
      this.deps.log.error({ err }, 'cannot persist rollout state; retrying with the next batch');
    });
  }

  /** A committed batch: the hosts it touches are compiled after the debounce (batches in between coalesce). */
  private onBatch(b: ChangeBatch): void {
    if (b.relist || this.pending === 'all') this.pending = 'all';
    else for (const h of affectedHosts(this.deps.store, b.changes)) this.pending.add(h);
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const scope = this.pending;
      this.pending = new Set();
      this.recompile(scope);
    }, this.deps.debounceMs ?? 50);
  }

  /**
   * Compiles the hosts in `scope` (every host for 'all'), forgets those that
   * no longer exist, and pushes to their connected agents whose desired
   * state moved.
   */
  recompile(scope: ReadonlySet<string> | 'all'): void {
    const reader = this.deps.store;
    const cache: CompileCache = new Map();
    const ids = scope === 'all' ? new Set([...reader.list('host').map((h) => h.key), ...this.desired.keys()]) : scope;
    const gone: string[] = [];
    for (const id of ids) {
      const h = reader.get('host', id);
      if (!h) {
        gone.push(id);
        continue;
      }
      try {
        this.compilations++;
        const firewall = compileFirewall(reader, id, this.deps.compile, cache);
        const routing = compileRouting(reader, id, this.deps.compile);
        const tenant = reader.get('subnet', h.value.subnetId)?.value.tenantId ?? '';
        this.desired.set(id, { firewall, routing, version: versionOf(firewall, routing), subnet: h.value.subnetId, tenant });
        const hist = this.history.get(id) ?? new Map<string, FirewallPolicy>();
        hist.set(firewall.version, firewall);
        // Keep the last few versions, and always those a connected agent has or is applying (its next delta's base).
        const session = this.sessions.get(id);
        const pinned = new Set([firewall.version, session?.applied.firewall, session?.inFlight?.firewall.version]);
        for (const v of [...hist.keys()]) {
          if (hist.size <= HISTORY) break;
          if (!pinned.has(v)) hist.delete(v);
        }
        this.history.set(id, hist);
      } catch (err) {
        this.deps.log.error({ err, host: id }, 'cannot compile host');
      }
    }
    for (const id of gone) {
      // A deleted host goes with everything kept for it (its rollout from the store with the next batch).
      this.desired.delete(id);
      this.history.delete(id);
      this.health.delete(id);
      if (this.rollouts.delete(id)) this.dirty.add(id);
      this.sessions.get(id)?.end(unknownHost(id, 'hello.host_id'));
    }
    const encoded = new Map<string, PreEncoded<typeof SyncResponseSchema>>();
    for (const id of ids) {
      const s = this.sessions.get(id);
      if (s) this.pump(s, encoded);
    }
  }

  private track(hostId: string): RolloutState {
    let r = this.rollouts.get(hostId);
    if (!r) {
      r = { hostId, desiredVersion: '', sentVersion: '', appliedVersion: '', nackedVersion: '', nackError: undefined, connected: false, updatedAt: new Date() };
      this.rollouts.set(hostId, r);
    }
    return r;
  }

  /** Sends the next update to `s` if nothing is in flight and the agent lacks the desired state. */
  private pump(s: Session, encoded = new Map<string, PreEncoded<typeof SyncResponseSchema>>()): void {
    const want = this.desired.get(s.hostId);
    const r = this.track(s.hostId);
    r.desiredVersion = want?.version ?? '';
    if (!want || s.inFlight) return;
    if (s.applied.firewall === want.firewall.version && s.applied.routing === want.routing.version) return;
    if (s.refused === want.version) return;
    const base = this.history.get(s.hostId)?.get(s.applied.firewall);
    const withRouting = !base || s.applied.routing !== want.routing.version;
    // The update's id: a firewall-only delta does not name the routing version, so every host
    // moving between the same two firewall versions gets the very same bytes.
    const wire = base
      ? `${base.version}>${want.firewall.version}${withRouting ? `.${want.routing.version}` : ''}`
      : want.version;
    let bytes = encoded.get(wire);
    if (!bytes) {
      const msg = create(SyncResponseSchema, {
        version: wire,
        update: base
          ? { case: 'delta', value: {
            ...(base.version !== want.firewall.version ? { firewall: firewallDelta(base, want.firewall) } : {}),
            ...(withRouting ? { routing: want.routing } : {}),
          } }
          : { case: 'snapshot', value: { firewall: want.firewall, routing: want.routing } },
      });
      bytes = PreEncoded.encode(SyncResponseSchema, msg);
      this.encodes++;
      encoded.set(wire, bytes);
    }
    s.inFlight = { wire, firewall: want.firewall, routing: want.routing };
    r.sentVersion = want.version;
    r.updatedAt = new Date();
    this.dirty.add(s.hostId);
    s.write(bytes);
  }

  private onAck(s: Session, wire: string): void {
    const r = this.track(s.hostId);
    if (!s.inFlight || s.inFlight.wire !== wire) return;
    s.applied = { firewall: s.inFlight.firewall.version, routing: s.inFlight.routing.version };
    r.appliedVersion = versionOf(s.inFlight.firewall, s.inFlight.routing);
    r.nackedVersion = '';
    r.nackError = undefined;
    r.updatedAt = new Date();
    this.dirty.add(s.hostId);
    s.inFlight = undefined;
    this.pump(s);
  }

  private onNack(s: Session, wire: string, error: ErrorDetail | undefined): void {
    const r = this.track(s.hostId);
    if (!s.inFlight || s.inFlight.wire !== wire) return;
    const version = versionOf(s.inFlight.firewall, s.inFlight.routing);
    r.nackedVersion = version;
    s.refused = version;
    r.nackError = error ?? create(ErrorDetailSchema, { reason: 'UNKNOWN', message: 'the agent gave no reason' });
    r.updatedAt = new Date();
    this.dirty.add(s.hostId);
    s.inFlight = undefined;
    // A refused delta may have failed on its base: the next try is a snapshot.
    s.applied = { firewall: '', routing: s.applied.routing };
    this.deps.log.warn({ host: s.hostId, version, update: wire, error: r.nackError.message }, 'agent refused an update');
    this.pump(s);
  }

  /** Rollout state of every host that exists, sorted by host id. */
  rolloutState(): RolloutState[] {
    for (const id of this.desired.keys()) this.track(id).desiredVersion = this.desired.get(id)?.version ?? '';
    return [...this.rollouts.values()].filter((r) => this.desired.has(r.hostId)).sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /** The same as GetRollout's messages. */
  rollout(): HostRollout[] {
    return this.rolloutState().map((r) => create(HostRolloutSchema, {
      hostId: r.hostId, desiredVersion: r.desiredVersion, sentVersion: r.sentVersion, appliedVersion: r.appliedVersion,
      nackedVersion: r.nackedVersion, ...(r.nackError ? { nackError: r.nackError } : {}), connected: r.connected,
      updatedAt: timestampFromDate(r.updatedAt),
    }));
  }

  desiredVersion(hostId: string): string | undefined {
    return this.desired.get(hostId)?.version;
  }

  /** Every known host with its subnet and tenant, from memory. */
  hosts(): { id: string; subnet: string; tenant: string }[] {
    return [...this.desired].map(([id, d]) => ({ id, subnet: d.subnet, tenant: d.tenant })).sort((a, b) => a.id.localeCompare(b.id));
  }

  get connectedCount(): number {
    return this.sessions.size;
  }

  service(): ServiceImpl<Methods> {
    return {
      sync: async (requests, stream, ctx) => {
        const it = requests[Symbol.asyncIterator]();
        const first = await it.next();
        const hello = (first.value as SyncRequest | undefined)?.message;
        if (first.done || hello?.case !== 'hello') throw invalidArgument('message', 'the first message of a Sync stream must be a Hello');
        const hostId = hello.value.hostId;
        const peer = this.deps.peerHostId?.(ctx);
        if (peer !== undefined && peer !== hostId) {
          throw permissionDenied(`certificate is for ${peer}, not ${hostId}`, `host/${hostId}`, 'hello.host_id');
        }
        if (!this.deps.store.get('host', hostId)) throw unknownHost(hostId, 'hello.host_id');
        const old = this.sessions.get(hostId);
        if (old) {
          this.deps.log.warn({ host: hostId }, 'a second Sync stream for the host replaces the first');
          old.end(new HostnetError(Status.ABORTED, { reason: 'REPLACED', message: 'a newer Sync stream of this host replaced this one' }));
        }
        let end!: (err: HostnetError) => void;
        const ended = new Promise<never>((_resolve, reject) => { end = reject; });
        ended.catch(() => undefined);
        const session: Session = {
          hostId,
          write: (m) => { stream.write(m); },
          applied: { firewall: hello.value.firewallVersion, routing: hello.value.routingVersion },
          refused: '',
          inFlight: undefined,
          end,
        };
        this.sessions.set(hostId, session);
        // The response headers tell the agent its Hello was accepted, also when it is up to date and no update follows.
        stream.sendMetadata(new Metadata());
        const r = this.track(hostId);
        r.connected = true;
        r.updatedAt = new Date();
        if (session.applied.firewall && session.applied.routing) {
          r.appliedVersion = `${session.applied.firewall}.${session.applied.routing}`;
        }
        this.pump(session);
        try {
          const next = () => Promise.race([it.next(), ended]);
          for (let n = await next(); !n.done; n = await next()) {
            const m = n.value.message;
            if (m.case === 'ack') this.onAck(session, m.value.version);
            else if (m.case === 'nack') this.onNack(session, m.value.version, m.value.error);
          }
        } finally {
          if (this.sessions.get(hostId) === session) {
            this.sessions.delete(hostId);
            r.connected = false;
            r.updatedAt = new Date();
          }
        }
      },
      reportHealth: async (req, ctx) => {
        const report = req.report;
        if (!report) throw invalidArgument('report', 'is required');
        const peer = this.deps.peerHostId?.(ctx);
        if (peer !== undefined && peer !== report.hostId) {
          throw permissionDenied(`certificate is for ${peer}, not ${report.hostId}`, `host/${report.hostId}`, 'report.host_id');
        }
        if (!this.deps.store.get('host', report.hostId)) throw unknownHost(report.hostId, 'report.host_id');
        this.health.set(report.hostId, { report, received: new Date() });
        return { heartbeatSeconds: this.deps.heartbeatSeconds ?? 30 };
      },
    };
  }

  /**
   * Ends every Sync stream with UNAVAILABLE (the agents reconnect, to another
   * replica if there is one): grpc-js with channelz off cannot cancel them on
   * shutdown, and an open stream would hold the server forever.
   */
  endStreams(): void {
    const err = new HostnetError(Status.UNAVAILABLE, { reason: 'SHUTTING_DOWN', message: 'the controller is shutting down; reconnect' });
    for (const s of this.sessions.values()) s.end(err);
  }

  /** Stops timers and the change feed, and writes the last rollout batch. */
  async close(): Promise<void> {
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
    clearInterval(this.flushTimer);
    await this.flush();
  }
}
