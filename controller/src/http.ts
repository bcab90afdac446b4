// The controller's HTTP side: the dashboard page (/), the JSON API it and
// other dashboards poll, /healthz and /metrics. Everything is served from memory (the agents' side keeps the
// hosts, their rollout and their latest health report); no request reads the
// database. The paths and fields are a public contract: docs/controller-api.md.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import { Gauge, Registry } from 'prom-client';
import { processMetrics } from '../../common/metrics.js';
import { type HealthReport, HealthStatus } from '../../proto/gen/hostnet/v1/health_pb.js';
import type { Logger } from '../../common/log.js';
import type { Agents } from './sync/agents.js';
import { rolloutView } from './rollout-view.js';
import type { Tokens } from './admin/tokens.js';
import { type Caller, sees } from './validate.js';
import type { Reader } from './store/store.js';
import { compileSwitch, hostsBySwitch } from './switches.js';
import type { HostStatus, HostView, SwitchView } from './api-types.js';
import { type HostFacts, QueryError, fleetSummary, parseHostQuery, rolloutStateOf, selectHosts } from './fleet-view.js';

export type { HostStatus, HostView } from './api-types.js';

const STATUS: Record<number, HostStatus> = {
  [HealthStatus.OK]: 'ok', [HealthStatus.DEGRADED]: 'degraded', [HealthStatus.FAILED]: 'failed',
};

export interface HttpDeps {
  readonly agents: Agents;
  /** The admin API's tokens: /api/v1 answers a bearer token's caller (an operator: every host; a tenant admin: its tenant's). */
  readonly tokens: Tokens;
  readonly log: Logger;
  readonly revision: () => number;
  /** Whether the store is current (etcd: followed with a leader); /healthz says 503 otherwise. */
  readonly live?: () => boolean;
  readonly counters?: () => { relists: number; conflicts: number; compactions: number };
  /** This replica's name (in /healthz). */
  readonly replica?: string;
  /** Default heartbeat interval; a host with no report for three of its intervals is stale. */
  readonly heartbeatSeconds: number;
  readonly now?: () => Date;
  /** The store's snapshot: the switches and what their configuration compiles to. */
  readonly store?: Reader;
}

/** A host's facts the list filters, sorts and counts by, and its latest report (made into a HostView by hostView, for the rows a request returns). */
export interface HostRow extends HostFacts {
  readonly controller: string | null;
  readonly desiredVersion: string;
  readonly appliedVersion: string;
  readonly report: HealthReport | undefined;
}

/**
 * Every host's row. Pure given the agents' state and the clock. Cheap: the
 * checks, events and sessions of a report are converted only for the rows a
 * request returns (a summary of 10,000 hosts converts none of them).
 */
export function hostRows(deps: HttpDeps): HostRow[] {
  const now = (deps.now?.() ?? new Date()).getTime();
  const rollout = new Map(deps.agents.rolloutState().map((r) => [r.hostId, r]));
  return deps.agents.hosts().map((h) => {
    const r = rollout.get(h.id);
    const health = deps.agents.health.get(h.id);
    const interval = (health?.report.heartbeatSeconds || deps.heartbeatSeconds) * 1000;
    const where = deps.agents.presence(h.id);
    let status: HostStatus = 'unknown';
    if (health) {
      // Connected here: its reports arrive here (and its Hello counts: it may have moved from another replica).
      // Connected to another replica: that replica marks it stale (reports that change nothing are not shared).
      // Connected nowhere: silent since its last report, or since its replica went away (vouched for until then).
      const vouched = where.local ? where.since?.getTime() : where.replica ? 0 : where.goneAt?.getTime();
      const seen = Math.max(health.received.getTime(), vouched ?? 0);
      const stale = where.replica && !where.local ? health.stale : now - seen > 3 * interval;
      status = stale ? 'stale' : STATUS[health.report.status] ?? 'unknown';
    }
    return {
      id: h.id,
      subnet: h.subnet,
      tenant: h.tenant,
      status,
      lastSeen: health ? isoOf(health.received) : null,
      connected: r?.connected ?? false,
      controller: where.local ? deps.replica ?? 'local' : where.replica ?? null,
      desiredVersion: r?.desiredVersion ?? '',
      appliedVersion: r?.appliedVersion ?? '',
      rollout: rolloutStateOf(r?.desiredVersion ?? '', r?.appliedVersion ?? '', r?.nackedVersion),
      nack: r?.nackedVersion ? { version: r.nackedVersion, reason: r.nackError?.reason ?? '', message: r.nackError?.message ?? '' } : null,
      report: health?.report,
    };
  });
}

/** The whole host view of a row: its report's checks, events and sessions in the API's shapes. */
export function hostView({ report, ...facts }: HostRow): HostView {
  return {
    ...facts,
    checks: (report?.checks ?? []).map((c) => ({ name: c.name, status: STATUS[c.status] ?? 'unknown', reason: c.reason, since: iso(c.since) })),
    events: (report?.events ?? []).map((e) => ({ kind: e.kind, detail: e.detail, time: iso(e.time) })),
    sessions: (report?.sessions ?? []).map((x) => ({
      uplink: x.uplink, state: x.state, remoteAs: x.remoteAs, prefixesReceived: x.prefixesReceived, advertised: [...x.advertised],
    })),
    agentVersion: report?.agentVersion ?? '',
    repairsTotal: Number(report?.repairsTotal ?? 0n),
  };
}

/** A report's arrival time as ISO 8601, made once per report (not once per host per request). */
const isoMemo = new WeakMap<Date, string>();
function isoOf(d: Date): string {
  let s = isoMemo.get(d);
  if (s === undefined) {
    s = d.toISOString();
    isoMemo.set(d, s);
  }
  return s;
}

const iso = (t: Timestamp | undefined): string | null => (t ? timestampDate(t).toISOString() : null);

export function metricsRegistry(deps: HttpDeps): Registry {
  const registry = new Registry();
  processMetrics(registry, 'hostnet_controller_');
  new Gauge({
    name: 'hostnet_controller_agents_connected', help: 'Agents with a Sync stream open', registers: [registry],
    collect() { this.set(deps.agents.connectedCount); },
  });
  new Gauge({
    name: 'hostnet_controller_store_revision', help: 'The store revision last committed', registers: [registry],
    collect() { this.set(deps.revision()); },
  });
  new Gauge({
    name: 'hostnet_controller_hosts', help: 'Hosts by health status', labelNames: ['status'], registers: [registry],
    collect() {
      const counts: Record<HostStatus, number> = { ok: 0, degraded: 0, failed: 0, stale: 0, unknown: 0 };
      for (const h of hostRows(deps)) counts[h.status]++;
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'hostnet_controller_store_live', help: '1 while the store is current (etcd: followed, with a leader)', registers: [registry],
    collect() { this.set(deps.live?.() ?? true ? 1 : 0); },
  });
  const counter = (name: 'relists' | 'conflicts' | 'compactions', help: string) => new Gauge({
    name: `hostnet_controller_store_${name}`, help, registers: [registry],
    collect() { this.set(deps.counters?.()[name] ?? 0); },
  });
  counter('relists', 'Full relists of the store after the watch fell behind a compaction (a count since start)');
  counter('conflicts', 'Transactions run again because another replica committed first (a count since start)');
  counter('compactions', 'etcd history compactions done by this replica (a count since start)');
  new Gauge({
    name: 'hostnet_controller_compile_last_seconds', help: 'How long the last compile pass took: compiling the hosts a change touched and writing their updates', registers: [registry],
    collect() { this.set(deps.agents.lastPass.ms / 1000); },
  });
  new Gauge({
    name: 'hostnet_controller_compile_last_hosts', help: 'Hosts the last compile pass compiled (those the change touched)', registers: [registry],
    collect() { this.set(deps.agents.lastPass.hosts); },
  });
  new Gauge({
    name: 'hostnet_controller_hosts_nacked', help: 'Hosts whose latest update was refused', registers: [registry],
    collect() { this.set(deps.agents.rolloutState().filter((r) => r.nackedVersion).length); },
  });
  return registry;
}

function json(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body)}\n`);
}

/** A request the server cannot make sense of: answered 4xx, never thrown further. */
class BadRequest extends Error {
  constructor(readonly status: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
  }
}

/** The request's path, decoded, and its query; throws BadRequest for a target no URL parser accepts or a malformed %-escape. */
function targetOf(req: IncomingMessage): { path: string; params: URLSearchParams } {
  let url: URL;
  try {
    url = new URL(req.url ?? '/', 'http://controller');
  } catch {
    throw new BadRequest(400, 'the request target is not a valid URL path');
  }
  const raw = url.pathname.replace(/\/+$/, '') || '/';
  try {
    return { path: decodeURIComponent(raw), params: url.searchParams };
  } catch {
    throw new BadRequest(400, 'the path has a malformed %-escape');
  }
}

/** The dashboard page's files by path, read once and served from memory with a policy that lets the page load only itself. */
type Page = ReadonlyMap<string, { type: string; body: Buffer }>;

const PAGE_FILES: Record<string, [file: string, type: string]> = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/app.js': ['app.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8'],
};

/** The page's files: dist/controller/web beside the compiled controller, or from the sources' side (tests run them through tsx). */
function loadPage(): Page {
  const found = [new URL('../web/', import.meta.url), new URL('../../dist/controller/web/', import.meta.url)].map((u) => fileURLToPath(u))
    .find((d) => existsSync(`${d}/app.js`));
  const files = new Map<string, { type: string; body: Buffer }>();
  if (found) for (const [path, [file, type]] of Object.entries(PAGE_FILES)) files.set(path, { type, body: readFileSync(`${found}/${file}`) });
  return files;
}

const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

function queryOf(params: URLSearchParams): ReturnType<typeof parseHostQuery> {
  try {
    return parseHostQuery(params);
  } catch (err) {
    if (err instanceof QueryError) throw new BadRequest(400, err.message);
    throw err;
  }
}

/** The caller of an /api/v1 request, from its "authorization: Bearer TOKEN" header; a 401 saying what is wrong otherwise. */
function callerOf(deps: HttpDeps, req: IncomingMessage): Caller {
  try {
    return deps.tokens.authenticate(req.headers.authorization);
  } catch (err) {
    throw new BadRequest(401, err instanceof Error ? err.message : 'unauthenticated', { 'www-authenticate': 'Bearer realm="hostnet"' });
  }
}

function route(deps: HttpDeps, registry: Registry, page: Page, req: IncomingMessage, res: ServerResponse): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') throw new BadRequest(405, 'only GET and HEAD', { allow: 'GET, HEAD' });
  const { path, params } = targetOf(req);
  // /healthz and /metrics stay open (load balancers, Prometheus; counts only); the API needs a token.
  const caller = path.startsWith('/api/') ? callerOf(deps, req) : undefined;
  const visible = (): HostRow[] => hostRows(deps).filter((h) => !caller || sees(caller, h.tenant));
  if (path === '/healthz') {
    const live = deps.live?.() ?? true;
    json(res, live ? 200 : 503, {
      status: live ? 'ok' : 'store-unavailable', revision: deps.revision(), ...(deps.replica ? { replica: deps.replica } : {}),
    });
  } else if (Object.hasOwn(PAGE_FILES, path)) {
    const file = page.get(path);
    if (!file) throw new BadRequest(503, 'the dashboard page is not built (npm run build makes dist/controller/web)');
    res.writeHead(200, { 'content-type': file.type, ...PAGE_HEADERS });
    res.end(req.method === 'HEAD' ? undefined : file.body);
  } else if (path === '/api/v1/summary') {
    const viewer = caller?.role === 'tenant-admin' ? { role: caller.role, tenant: caller.tenant } : { role: 'operator' as const };
    json(res, 200, fleetSummary(visible(), viewer, deps.revision(), deps.now?.() ?? new Date()));
  } else if (path === '/api/v1/hosts') {
    const query = queryOf(params);
    const { total, items } = selectHosts(visible(), query);
    json(res, 200, items.map(hostView), { 'x-total-count': String(total) });
  } else if (path.startsWith('/api/v1/hosts/')) {
    const id = path.slice('/api/v1/hosts/'.length);
    // Another tenant's host is "not found", as an unknown one: nothing about it leaks.
    const host = visible().find((h) => h.id === id);
    if (!host) throw new BadRequest(404, `host ${id.slice(0, 253)} not found`);
    json(res, 200, hostView(host));
  } else if (path === '/api/v1/switches' || path.startsWith('/api/v1/switches/')) {
    switchRoute(deps, caller, path, req, res);
  } else if (path === '/api/v1/rollout') {
    const ids = new Set(visible().map((h) => h.id));
    json(res, 200, deps.agents.rollout().filter((r) => ids.has(r.hostId)).map(rolloutView));
  } else if (path === '/metrics') {
    registry.metrics().then((text) => {
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(text);
    }, (err: unknown) => {
      deps.log.error({ err }, 'metrics failed');
      json(res, 500, { error: 'metrics failed' });
    });
  } else {
    throw new BadRequest(404, `no such path ${path.slice(0, 200)}`);
  }
}

/**
 * The switches (operators only): `/api/v1/switches` lists them with the
 * version of their compiled configuration and what their ToR agent
 * applied or refused (written to the status store by the replica it streams
 * to); `/api/v1/switches/NAME/frr.conf`
 * is that configuration, for switches other tooling configures (its ETag is
 * the version).
 */
function switchRoute(deps: HttpDeps, caller: Caller | undefined, path: string, req: IncomingMessage, res: ServerResponse): void {
  if (caller?.role !== 'operator') throw new BadRequest(403, 'switches are for operators');
  const store = deps.store;
  if (!store) throw new BadRequest(503, 'this controller serves no switches');
  if (path === '/api/v1/switches') {
    // Each switch's rollout as this replica sees it (the ToR agents connected here).
    const index = hostsBySwitch(store);
    const compiled = new Map(store.list('switch').map(({ key, value }) => [key, compileSwitch(store, value, index)]));
    const rollout = new Map(deps.agents.switches.states(new Map([...compiled].map(([k, c]) => [k, c.version]))).map((r) => [r.name, r]));
    const now = (deps.now?.() ?? new Date()).getTime();
    json(res, 200, store.list('switch').map(({ value: sw }): SwitchView => {
      const c = compiled.get(sw.name) ?? compileSwitch(store, sw, index);
      const r = rollout.get(sw.name);
      const h = deps.agents.health.get(sw.name);
      // As a host's: silent for three heartbeats is stale (judged by the replica its agent reports to, when another).
      const local = r?.replica === deps.replica || (r?.connected && !deps.replica);
      const stale = h && (local || !r?.connected ? now - h.received.getTime() > 3 * 1000 * (h.report.heartbeatSeconds || deps.heartbeatSeconds) : h.stale);
      return {
        name: sw.name, asn: sw.asn, routerId: sw.routerId, version: c.version, routedPorts: c.intent.routed.length, poolPorts: c.intent.pool.length,
        connected: r?.connected ?? false, replica: r?.replica ?? null, appliedVersion: r?.appliedVersion ?? '', refused: r?.nackedVersion ? { version: r.nackedVersion, error: r.nackError } : null,
        status: !h ? 'unknown' : stale ? 'stale' : STATUS[h.report.status] ?? 'unknown',
        lastSeen: h ? h.received.toISOString() : null,
        checks: (h?.report.checks ?? []).map((c) => ({ name: c.name, status: STATUS[c.status] ?? 'unknown', reason: c.reason })),
        sessions: (h?.report.sessions ?? []).map((x) => ({ port: x.uplink, state: x.state, remoteAs: x.remoteAs, prefixesReceived: x.prefixesReceived })),
      };
    }));
    return;
  }
  const m = /^\/api\/v1\/switches\/([^/]+)\/frr\.conf$/.exec(path);
  if (!m) throw new BadRequest(404, `no such path ${path.slice(0, 200)}`);
  const name = m[1] ?? '';
  const sw = store.get('switch', name);
  if (!sw) throw new BadRequest(404, `switch ${name.slice(0, 63)} not found`);
  const c = compileSwitch(store, sw.value);
  res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', etag: `"${c.version}"`, 'x-hostnet-revision': String(deps.revision()) });
  res.end(req.method === 'HEAD' ? undefined : c.frrConf);
}

/**
 * Creates the HTTP server (not yet listening). Every request gets an answer:
 * bad ones a 4xx naming what is wrong, a failing handler a 500 with an
 * incident id (the error itself is logged); nothing a client sends can throw
 * out of the server.
 */
export function httpServer(deps: HttpDeps): Server {
  const registry = metricsRegistry(deps);
  const page = loadPage();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    try {
      route(deps, registry, page, req, res);
    } catch (err) {
      if (err instanceof BadRequest) {
        json(res, err.status, { error: err.message }, err.headers);
        return;
      }
      const incidentId = randomUUID();
      deps.log.error({ err, incidentId, url: req.url?.slice(0, 200) }, 'HTTP handler failed');
      if (!res.headersSent) json(res, 500, { error: `internal error (incident ${incidentId})` });
      else res.destroy();
    }
  });
  // Requests node cannot even parse (bad request lines, headers): a 400 and close, as node does, but never a throw.
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}
