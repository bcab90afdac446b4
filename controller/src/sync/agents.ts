// The agents' side of the controller: desired state per host (compiled from
// the store, recompiled ~50 ms after a change), one Sync stream per agent with
// at most one un-acknowledged update in flight (a newer desired state simply
// replaces what was waiting), deltas when the agent's version is known,
// snapshots otherwise, and the rollout state per host (sent, applied,
// refused with the agent's error). Identical updates are encoded once.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf';
import { Metadata, status as Status } from '@grpc/grpc-js';
import type { Logger } from '../../../common/log.js';
import { byName } from '../../../common/names.js';
import { HostnetError, invalidArgument, permissionDenied, unauthenticated } from '../../../proto/grpc/errors.js';
import { PreEncoded } from '../../../proto/grpc/definition.js';
import type { CallContext, Outgoing, ServiceImpl } from '../../../proto/grpc/server.js';
import {
  type AgentService, type SyncRequest, SyncResponseSchema,
} from '../../../proto/gen/hostnet/v1/agent_pb.js';
import type { FirewallPolicy, RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';
import { type ErrorDetail, ErrorDetailSchema } from '../../../proto/gen/hostnet/v1/errors_pb.js';
import { type HealthReport, HealthReportSchema } from '../../../proto/gen/hostnet/v1/health_pb.js';
import { type HostRollout, HostRolloutSchema } from '../../../proto/gen/hostnet/v1/admin_pb.js';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import { type CompileOptions, compileCache, compileFirewall, compileRouting } from '../compile.js';
import type { ChangeBatch, Store } from '../store/store.js';
import { type StatusRecord, type StatusStore, decodeConnection, decodeHealth, decodeRollout, encodeConnection, encodeHealth, encodeRollout } from '../store/status.js';
import { affectedHosts } from './affected.js';
import type { Peer } from '../identity/peer.js';
import type { AgentCertificate } from '../../../proto/gen/hostnet/v1/identity_pb.js';
import { firewallDelta } from './delta.js';
import { SwitchSessions, reader } from './switch-sessions.js';

type Methods = typeof AgentService extends { method: infer M } ? M : never;

interface Desired {
  readonly firewall: FirewallPolicy;
  readonly routing: RoutingIntent;
  /** The update version agents acknowledge: both content versions. */
  readonly version: string;
}

/** What the controller knows of one host's rollout (GetRollout's HostRollout, kept mutable in memory). */
export interface RolloutState {
  hostId: string;
  desiredVersion: string;
  sentVersion: string;
  appliedVersion: string;
  nackedVersion: string;
  nackError: ErrorDetail | undefined;
  /** A Sync stream is open on this replica or another. */
  connected: boolean;
  updatedAt: Date;
}

/** A host's latest health report: received here, or shared by the replica it reports to. */
export interface HealthState {
  report: HealthReport;
  received: Date;
  /** The replica the host reports to found it silent for three heartbeats. */
  stale: boolean;
}

/** Where a host's Sync stream is: here (since when), on another replica (which), or nowhere since `goneAt`. */
export interface Presence {
  readonly local: boolean;
  /** When its stream here opened: it was heard from then, whatever its last report says. */
  readonly since: Date | undefined;
  readonly replica: string | undefined;
  /** When its stream on another replica ended (that replica said so, or died): the host was fine until then. */
  readonly goneAt: Date | undefined;
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
  readonly since: Date;
  /** The certificate it connected with (undefined without client certificates). */
  readonly peer: Peer | undefined;
}

export interface AgentsDeps {
  readonly store: Store;
  /** Where rollout, health and connections are kept (and, with etcd, shared with the other replicas). */
  readonly status: StatusStore;
  /** This replica's name, in the connection records other replicas see. */
  readonly replica?: string;
  readonly log: Logger;
  readonly compile?: CompileOptions;
  /** Recompile this long after a store change (changes in between coalesce). */
  readonly debounceMs?: number;
  /**
   * Who the caller is, from its TLS client certificate (the production
   * listener requires one): `peer` reads it, `accepted` throws unless the
   * host's credential still lists it (a revoked one ends its stream at once).
   */
  readonly identity?: { readonly peer: (ctx: CallContext) => Peer; readonly accepted: (peer: Peer) => void };
  /** Issues the caller's host a new certificate (AgentService.Renew). */
  readonly renew?: (peer: Peer, csrPem: string) => Promise<AgentCertificate>;
  readonly heartbeatSeconds?: number;
  /** How often changed rollout, health and connections are written to the status store (in one batch). */
  readonly rolloutFlushMs?: number;
}

const versionOf = (fw: FirewallPolicy, rt: RoutingIntent): string => `${fw.version}.${rt.version}`;

const unknownHost = (hostId: string, field: string): HostnetError => new HostnetError(Status.NOT_FOUND, {
  reason: 'NOT_FOUND', resource: `host/${hostId}`, field, message: `host/${hostId} is not known to this controller`,
});
/**
 * Firewall versions kept per host as delta bases (besides those a connected
 * agent has or is applying): the one in force and the one before it, so an
 * agent that missed one change (it moved to another replica meanwhile) gets
 * a delta; one further behind gets a snapshot. Each kept version is the
 * host's whole compiled policy: with 8 kept, five changes grew each replica's
 * heap by 170 MB at 10,400 hosts (the fleet benchmark's RSS after changes).
 */
const HISTORY = 2;

/**
 * Flush intervals a rollout row changed only by a send waits for the agent's
 * answer before it is written alone (2 s at the default 500 ms): another
 * replica shows a send that late, and an applied or refused update at the
 * next flush as before.
 */
const SENT_ROW_WAIT_FLUSHES = 4;

export class Agents {
  private readonly desired = new Map<string, Desired>();
  /** Recent firewall policies per host by version: the bases deltas are computed from. */
  private readonly history = new Map<string, Map<string, FirewallPolicy>>();
  private readonly sessions = new Map<string, Session>();
  private readonly rollouts = new Map<string, RolloutState>();
  readonly health = new Map<string, HealthState>();
  /** Hosts connected to other replicas (from the status store). */
  private readonly remote = new Map<string, { replica: string; since: Date }>();
  /** When a host's stream on another replica went away. */
  private readonly goneAt = new Map<string, Date>();
  private timer: NodeJS.Timeout | undefined;
  /** Hosts to compile at the next pass, each with whether its routing too ('all' after a relist). */
  private pending: Map<string, boolean> | 'all' = new Map();
  /** Hosts whose rollout, health or connection changed since the last batch was written. */
  private readonly dirty = { rollout: new Set<string>(), health: new Set<string>(), connection: new Set<string>() };
  /**
   * Hosts whose rollout row changed only by an update sent: the row waits
   * for the agent's answer (one write for both, instead of one for the send
   * and one for the ack per host per change), and goes alone once it is
   * `sentRowWaitMs` old (its `updatedAt` is the send's: any later change
   * makes it dirty).
   */
  private readonly sentOnly = new Set<string>();
  private readonly sentRowWaitMs: number;
  /** The health content last written per host (without its timestamp): unchanged reports are not written again. */
  private readonly healthWritten = new Map<string, string>();
  private readonly flushTimer: NodeJS.Timeout;
  private unwatch: (() => void) | undefined;
  /** Encodes done, for tests and metrics: identical updates count once. */
  encodes = 0;
  /** Host compilations done, for tests and metrics: a change compiles only the hosts it touches. */
  compilations = 0;
  /** The last compile pass: hosts compiled, and how long it took to compile them and write their updates. */
  lastPass = { hosts: 0, ms: 0 };
  /** Resolves when the first pass has compiled every host. */
  compiled: Promise<void> = Promise.resolve();
  /** Hosts per chunk of the first pass. */
  private chunk = Infinity;
  private closed = false;
  /** The ToR agents' streams (a Hello naming a switch). */
  readonly switches: SwitchSessions;

  private constructor(private readonly deps: AgentsDeps) {
    this.switches = new SwitchSessions(deps.store, deps.log, deps.debounceMs, {
      replica: this.replica,
      rollout: (name, r) => {
        const row = this.track(name);
        row.appliedVersion = r.applied;
        row.nackedVersion = r.nacked;
        row.nackError = r.nacked ? create(ErrorDetailSchema, { reason: 'SWITCH_CONFIG_REFUSED', message: r.error }) : undefined;
        row.updatedAt = new Date();
        this.dirty.rollout.add(name);
      },
      connection: (name) => this.dirty.connection.add(name),
      remote: (name) => {
        const row = this.rollouts.get(name);
        return { replica: this.remote.get(name)?.replica, ...(row ? { applied: row.appliedVersion, nacked: row.nackedVersion, error: row.nackError?.message ?? '' } : {}) };
      },
    });
    const flushMs = deps.rolloutFlushMs ?? 500;
    this.sentRowWaitMs = SENT_ROW_WAIT_FLUSHES * flushMs;
    this.flushTimer = setInterval(() => {
      this.markStale();
      void this.flush();
    }, flushMs);
    this.flushTimer.unref();
  }

  private get replica(): string {
    return this.deps.replica ?? 'local';
  }

  /**
   * The agents' side of a store: the rollout state it kept, every host
   * compiled, and from then on the store's change feed (a write on any
   * replica) recompiling the hosts each change touches, ~50 ms later.
   */
  static async open(deps: AgentsDeps, options: { chunk?: number; deferFirstPass?: boolean } = {}): Promise<Agents> {
    const a = new Agents(deps);
    a.onStatus(await deps.status.load((records) => a.onStatus(records)));
    a.unwatch = deps.store.watch(deps.store.revision(), (b) => a.onBatch(b));
    a.chunk = options.chunk ?? Infinity;
    if (!options.deferFirstPass) a.startFirstPass();
    return a;
  }

  /**
   * Starts the first pass (open() with `deferFirstPass`: the controller's
   * main, once its listeners are bound; its chunks would otherwise run in
   * every turn of the event loop its start awaits, and hold it up by the
   * whole pass). A change meanwhile compiles what it touches as always.
   */
  startFirstPass(): void {
    this.compiled = this.compileInChunks(this.chunk);
  }

  /**
   * The first pass, `size` hosts at a time with the event loop free in
   * between (the first chunk at once when started): a replica restarted
   * under 10,000 reconnecting agents answers its API and accepts their
   * streams at once, and each agent gets its state when the pass reaches its
   * host (a change meanwhile compiles what it touches as always).
   */
  private async compileInChunks(size: number): Promise<void> {
    const started = performance.now();
    const ids = this.deps.store.list('host').map((h) => h.key);
    let compiled = 0;
    for (let i = 0; i < ids.length && !this.closed; i += size) {
      const chunk = ids.slice(i, i + size);
      this.recompile(new Map(chunk.map((id) => [id, true])));
      compiled += chunk.length;
      await new Promise((r) => setImmediate(r));
    }
    this.lastPass = { hosts: compiled, ms: performance.now() - started };
  }

  /**
   * What the status store says (at open, then as any replica writes): rows
   * of hosts connected here are this replica's to write and are not taken
   * from it; the rest is what the other replicas know.
   */
  private onStatus(records: readonly StatusRecord[]): void {
    for (const r of records) {
      const mine = this.sessions.has(r.hostId);
      try {
        if (r.kind === 'rollout' && !mine) {
          if (!r.value) {
            this.rollouts.delete(r.hostId);
            continue;
          }
          const row = decodeRollout(r.value);
          let had = this.rollouts.get(r.hostId);
          if (had && had.updatedAt > row.updatedAt) continue;
          if (!had) {
            had = { hostId: r.hostId, desiredVersion: '', sentVersion: '', appliedVersion: '', nackedVersion: '', nackError: undefined, connected: false, updatedAt: row.updatedAt };
            this.rollouts.set(r.hostId, had);
          }
          // In place: thousands of rows arrive with every change; new objects per row would pile up in the old generation.
          had.sentVersion = row.sentVersion;
          had.appliedVersion = row.appliedVersion;
          had.nackedVersion = row.nackedVersion;
          had.nackError = row.nackError ? fromBinary(ErrorDetailSchema, row.nackError) : undefined;
          had.updatedAt = row.updatedAt;
        } else if (r.kind === 'health' && !mine) {
          if (r.value) this.health.set(r.hostId, { ...decodeHealth(r.value) });
          else this.health.delete(r.hostId);
        } else if (r.kind === 'connection') {
          const row = r.value ? decodeConnection(r.value) : undefined;
          if (row?.replica === this.replica) continue;
          if (row) {
            this.remote.set(r.hostId, { replica: row.replica, since: row.since });
            this.goneAt.delete(r.hostId);
          } else if (this.remote.delete(r.hostId)) {
            this.goneAt.set(r.hostId, new Date());
          }
        }
      } catch (err) {
        this.deps.log.warn({ err, kind: r.kind, host: r.hostId }, 'a status record that does not decode is ignored');
      }
    }
  }

  /** Hosts connected here that stopped reporting for three heartbeats: stale, and said so to the other replicas. */
  private markStale(): void {
    const now = Date.now();
    for (const id of [...this.sessions.keys(), ...this.switches.names()]) {
      const h = this.health.get(id);
      if (!h || h.stale) continue;
      if (now - h.received.getTime() > 3 * 1000 * (h.report.heartbeatSeconds || (this.deps.heartbeatSeconds ?? 30))) {
        h.stale = true;
        this.dirty.health.add(id);
      }
    }
  }

  /**
   * Writes the rollout, health and connections that changed since the last
   * batch (rows changed only by a send once they waited, or every one with
   * `all`). Never throws: a failure is logged and the records go with the
   * next batch (they are the latest state whenever they land).
   */
  flush(all = false): Promise<void> {
    const { rollout, health, connection } = this.dirty;
    const now = Date.now();
    for (const id of this.sentOnly) {
      // A row written anyway carries the send too.
      if (!rollout.has(id) && !all && now - (this.rollouts.get(id)?.updatedAt.getTime() ?? 0) < this.sentRowWaitMs) continue;
      rollout.add(id);
      this.sentOnly.delete(id);
    }
    if (rollout.size + health.size + connection.size === 0) return Promise.resolve();
    const records: StatusRecord[] = [];
    for (const id of rollout) {
      const r = this.rollouts.get(id);
      records.push({ kind: 'rollout', hostId: id, value: r ? encodeRollout({
        sentVersion: r.sentVersion, appliedVersion: r.appliedVersion, nackedVersion: r.nackedVersion,
        nackError: r.nackError ? toBinary(ErrorDetailSchema, r.nackError) : undefined, updatedAt: r.updatedAt,
      }) : undefined });
    }
    for (const id of health) {
      const h = this.health.get(id);
      records.push({ kind: 'health', hostId: id, value: h ? encodeHealth(h) : undefined });
    }
    for (const id of connection) {
      // A host's stream, or a switch's (ToR agent).
      const since = this.sessions.get(id)?.since ?? this.switches.since(id);
      records.push({ kind: 'connection', hostId: id, value: since ? encodeConnection({ replica: this.replica, since }) : undefined });
    }
    const batch = { rollout: [...rollout], health: [...health], connection: [...connection] };
    rollout.clear();
    health.clear();
    connection.clear();
    return this.deps.status.save(records).catch((err: unknown) => {
      for (const id of batch.rollout) rollout.add(id);
      for (const id of batch.health) health.add(id);
      for (const id of batch.connection) connection.add(id);
      this.deps.log.error({ err }, 'cannot save rollout and health; retrying with the next batch');
    });
  }

  /** A committed batch: the hosts it touches are compiled after the debounce (batches in between coalesce). */
  private onBatch(b: ChangeBatch): void {
    if (b.relist || b.changes.some((c) => c.kind === 'credential' || c.kind === 'host' || c.kind === 'switch')) this.endRevoked();
    this.switches.changed(b);
    if (b.relist || this.pending === 'all') this.pending = 'all';
    else for (const [h, routing] of affectedHosts(this.deps.store, b.changes)) this.pending.set(h, routing || (this.pending.get(h) ?? false));
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      const scope = this.pending;
      this.pending = new Map();
      this.recompile(scope);
    }, this.deps.debounceMs ?? 50);
  }

  /**
   * Compiles the hosts in `scope` (every host for 'all'; per host, whether
   * its routing intent too, else only its firewall policy), forgets those
   * that no longer exist, and pushes to their connected agents whose desired
   * state moved.
   */
  recompile(scope: ReadonlyMap<string, boolean> | 'all'): void {
    const started = performance.now();
    const reader = this.deps.store;
    const cache = compileCache();
    const ids: ReadonlyMap<string, boolean> = scope === 'all'
      ? new Map([...reader.list('host').map((h) => h.key), ...this.desired.keys()].map((id) => [id, true])) : scope;
    const gone: string[] = [];
    for (const [id, withRouting] of ids) {
      const h = reader.get('host', id);
      if (!h) {
        gone.push(id);
        continue;
      }
      try {
        this.compilations++;
        const had = this.desired.get(id);
        const firewall = compileFirewall(reader, id, this.deps.compile, cache);
        const routing = withRouting || !had ? compileRouting(reader, id, this.deps.compile) : had.routing;
        // Unchanged: the entry (and what it holds) stays as it was; no garbage per host per pass.
        if (had?.firewall.version !== firewall.version || had.routing.version !== routing.version) {
          this.desired.set(id, { firewall, routing, version: versionOf(firewall, routing) });
        }
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
      this.remote.delete(id);
      this.goneAt.delete(id);
      this.healthWritten.delete(id);
      if (this.health.delete(id)) this.dirty.health.add(id);
      if (this.rollouts.delete(id)) this.dirty.rollout.add(id);
      this.sessions.get(id)?.end(unknownHost(id, 'hello.host_id'));
    }
    const encoded = new Map<string, PreEncoded<typeof SyncResponseSchema>>();
    for (const id of ids.keys()) {
      const s = this.sessions.get(id);
      if (s) this.pump(s, encoded);
    }
    this.lastPass = { hosts: ids.size, ms: performance.now() - started };
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
    if (!this.dirty.rollout.has(s.hostId)) this.sentOnly.add(s.hostId);
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
    this.dirty.rollout.add(s.hostId);
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
    this.dirty.rollout.add(s.hostId);
    s.inFlight = undefined;
    // A refused delta may have failed on its base: the next try is a snapshot.
    s.applied = { firewall: '', routing: s.applied.routing };
    this.deps.log.warn({ host: s.hostId, version, update: wire, error: r.nackError.message }, 'agent refused an update');
    this.pump(s);
  }

  /** Rollout state of every host that exists, sorted by host id; connected on any replica. */
  rolloutState(): RolloutState[] {
    for (const id of this.desired.keys()) {
      const r = this.track(id);
      r.desiredVersion = this.desired.get(id)?.version ?? '';
      r.connected = this.sessions.has(id) || this.remote.has(id);
    }
    return [...this.rollouts.values()].filter((r) => this.desired.has(r.hostId)).sort((a, b) => byName(a.hostId, b.hostId));
  }

  /** Where a host's stream is. */
  presence(hostId: string): Presence {
    const s = this.sessions.get(hostId);
    return { local: Boolean(s), since: s?.since, replica: this.remote.get(hostId)?.replica, goneAt: this.goneAt.get(hostId) };
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
  /** Every host the store has (also those the first pass has not reached yet), sorted by id. */
  hosts(): { id: string; subnet: string; tenant: string }[] {
    const reader = this.deps.store;
    return reader.list('host').map((h) => ({ id: h.key, subnet: h.value.subnetId, tenant: reader.get('subnet', h.value.subnetId)?.value.tenantId ?? '' }))
      .sort((a, b) => byName(a.id, b.id));
  }

  /** Sync streams open on this replica. */
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
        const peer = this.authenticate(ctx, hostId, 'hello.host_id');
        // A replica that lost the store may hold an older desired state than the agent has: it goes elsewhere.
        if (!this.deps.store.live()) {
          throw new HostnetError(Status.UNAVAILABLE, {
            reason: 'STORE_UNAVAILABLE', message: 'this controller replica is not following the store; connect to another replica',
          });
        }
        // A ToR agent: its switch's name in the Hello (and in its certificate).
        if (!this.deps.store.get('host', hostId) && this.deps.store.get('switch', hostId)) {
          stream.sendMetadata(new Metadata());
          return this.switches.serve(hostId, hello.value.switchVersion, stream, it);
        }
        if (!this.deps.store.get('host', hostId)) throw unknownHost(hostId, 'hello.host_id');
        const old = this.sessions.get(hostId);
        if (old) {
          // After a renewal the agent moves its stream to the new certificate: expected, not a warning.
          if (old.peer && peer && old.peer.serial !== peer.serial) this.deps.log.info({ host: hostId, serial: peer.serial }, 'the host\'s stream moved to its renewed certificate');
          else this.deps.log.warn({ host: hostId }, 'a second Sync stream for the host replaces the first');
          old.end(new HostnetError(Status.ABORTED, { reason: 'REPLACED', message: 'a newer Sync stream of this host replaced this one' }));
        }
        // Ending the stream from our side rejects the read in progress (and every later one). Not a race
        // against one long-lived promise: each race would leave a reaction on it until the stream ends,
        // one more per message received (that grew the controller's memory with every change).
        const read = reader(it);
        const end = read.end;
        const session: Session = {
          hostId,
          write: (m) => { stream.write(m); },
          applied: { firewall: hello.value.firewallVersion, routing: hello.value.routingVersion },
          refused: '',
          inFlight: undefined,
          end,
          since: new Date(),
          peer,
        };
        // A stream lives no longer than its certificate (the agent renews and reconnects well before).
        const expiry = peer ? setTimeout(() => end(unauthenticated(`the client certificate ${peer.serial} expired at ${peer.notAfter.toISOString()}; renew it`)),
          Math.min(Math.max(0, peer.notAfter.getTime() - Date.now()), 2 ** 31 - 1)) : undefined;
        this.sessions.set(hostId, session);
        this.remote.delete(hostId);
        this.dirty.connection.add(hostId);
        // The response headers tell the agent its Hello was accepted, also when it is up to date and no update follows.
        stream.sendMetadata(new Metadata());
        const r = this.track(hostId);
        // What the agent says it runs is recorded when it is news (it may have applied an update from
        // another replica). Not otherwise: after a restart 10,000 agents reconnect, and each row written
        // again would be one more etcd write, and one more record for every replica's feed to decode.
        const applied = session.applied.firewall && session.applied.routing ? `${session.applied.firewall}.${session.applied.routing}` : '';
        if (applied && r.appliedVersion !== applied) {
          r.appliedVersion = applied;
          r.updatedAt = new Date();
          this.dirty.rollout.add(hostId);
        }
        this.pump(session);
        try {
          for (let n = await read.next(); !n.done; n = await read.next()) {
            const m = n.value.message;
            if (m.case === 'ack') this.onAck(session, m.value.version);
            else if (m.case === 'nack') this.onNack(session, m.value.version, m.value.error);
          }
        } finally {
          clearTimeout(expiry);
          if (this.sessions.get(hostId) === session) {
            this.sessions.delete(hostId);
            r.updatedAt = new Date();
            this.dirty.connection.add(hostId);
            // No answer will come here: its row goes with the next batch (before the replica it moves to writes its own).
            if (this.sentOnly.delete(hostId)) this.dirty.rollout.add(hostId);
            // The other replicas stop vouching for it from now: stale after three heartbeats unless it reconnects.
            this.goneAt.set(hostId, new Date());
          }
        }
      },
      renew: async (req, ctx) => {
        const id = this.deps.identity;
        const renew = this.deps.renew;
        if (!id || !renew) throw new HostnetError(Status.UNIMPLEMENTED, { reason: 'UNIMPLEMENTED', message: 'this listener has no client certificates to renew' });
        const peer = id.peer(ctx);
        id.accepted(peer);
        const certificate = await renew(peer, req.csrPem);
        this.deps.log.info({ host: peer.hostId, from: peer.serial }, 'certificate renewed');
        return { certificate };
      },
      reportHealth: async (req, ctx) => {
        const report = req.report;
        if (!report) throw invalidArgument('report', 'is required');
        this.authenticate(ctx, report.hostId, 'report.host_id');
        // A host's agent, or a switch's (ToR mode): the same report.
        if (!this.deps.store.get('host', report.hostId) && !this.deps.store.get('switch', report.hostId)) throw unknownHost(report.hostId, 'report.host_id');
        const had = this.health.get(report.hostId);
        this.health.set(report.hostId, { report, received: new Date(), stale: false });
        // Written when its content changed (not its timestamp) or it was stale: the other replicas see the
        // host's stream in its connection record, not in every heartbeat.
        const content = Buffer.from(toBinary(HealthReportSchema, { ...report, observedAt: undefined })).toString('base64');
        if (had?.stale || this.healthWritten.get(report.hostId) !== content) {
          this.healthWritten.set(report.hostId, content);
          this.dirty.health.add(report.hostId);
        }
        return { heartbeatSeconds: this.deps.heartbeatSeconds ?? 30 };
      },
    };
  }

  /** The caller's certificate, checked: it names `hostId` and is still accepted (none: no client certificates here). */
  private authenticate(ctx: CallContext, hostId: string, field: string): Peer | undefined {
    const id = this.deps.identity;
    if (!id) return undefined;
    const peer = id.peer(ctx);
    if (peer.hostId !== hostId) throw permissionDenied(`the client certificate is host/${peer.hostId}'s, not host/${hostId}'s`, `host/${hostId}`, field);
    id.accepted(peer);
    return peer;
  }

  /** Ends the streams whose certificate is no longer accepted (the host deleted or enrolled again), on every replica as its store changes. */
  private endRevoked(): void {
    const id = this.deps.identity;
    if (!id) return;
    for (const s of this.sessions.values()) {
      if (!s.peer) continue;
      try {
        id.accepted(s.peer);
      } catch (err) {
        this.deps.log.warn({ host: s.hostId, serial: s.peer.serial }, 'certificate revoked: its stream ends');
        s.end(HostnetError.from(err));
      }
    }
  }

  /**
   * Ends every Sync stream with UNAVAILABLE (the agents reconnect, to another
   * replica if there is one): grpc-js with channelz off cannot cancel them on
   * shutdown, and an open stream would hold the server forever.
   */
  endStreams(): void {
    const err = new HostnetError(Status.UNAVAILABLE, { reason: 'SHUTTING_DOWN', message: 'the controller is shutting down; reconnect' });
    for (const s of this.sessions.values()) s.end(err);
    this.switches.endAll(err);
  }

  /** Stops timers and the change feed, and writes the last rollout batch. */
  async close(): Promise<void> {
    this.closed = true;
    await this.compiled;
    this.unwatch?.();
    if (this.timer) clearTimeout(this.timer);
    this.switches.close();
    clearInterval(this.flushTimer);
    await this.flush(true);
  }
}
