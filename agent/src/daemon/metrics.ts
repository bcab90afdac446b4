// The agent's Prometheus metrics and its local HTTP endpoint: /metrics for
// the scraper, /status (JSON) for `hostnet-agent status`. Served on
// localhost only; nothing here changes the host.
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { processMetrics } from '../../../common/metrics.js';
import type { Level } from './health.js';

const LEVEL_VALUE: Record<Level, number> = { ok: 0, degraded: 1, failed: 2 };

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly applies = new Counter({
    name: 'hostnet_agent_updates_total', help: 'Updates from the controller, by kind and result (applied or refused)',
    labelNames: ['kind', 'result'] as const, registers: [this.registry],
  });
  private readonly applySeconds = new Histogram({
    name: 'hostnet_agent_apply_seconds', help: 'Time to apply one part of an update', labelNames: ['part'] as const,
    buckets: [0.005, 0.02, 0.1, 0.5, 1, 2, 5, 10], registers: [this.registry],
  });
  private readonly repairs = new Gauge({
    name: 'hostnet_agent_repairs', help: 'Drift repairs since start, by what was repaired', labelNames: ['what'] as const, registers: [this.registry],
  });
  private readonly checks = new Gauge({
    name: 'hostnet_agent_check_status', help: 'Health check status: 0 ok, 1 degraded, 2 failed', labelNames: ['check'] as const, registers: [this.registry],
  });
  private readonly status = new Gauge({
    name: 'hostnet_agent_status', help: 'Overall health: 0 ok, 1 degraded, 2 failed', registers: [this.registry],
  });
  private readonly connected = new Gauge({
    name: 'hostnet_agent_controller_connected', help: '1 while a Sync stream to a controller is open', registers: [this.registry],
  });
  private readonly events = new Counter({
    name: 'hostnet_agent_events_total', help: 'Health events, by kind', labelNames: ['kind'] as const, registers: [this.registry],
  });

  constructor() {
    processMetrics(this.registry, 'hostnet_agent_');
  }

  update(u: { kind: string; error: Error | undefined }): void {
    this.applies.inc({ kind: u.kind, result: u.error ? 'refused' : 'applied' });
  }

  applied(part: string, ms: number): void {
    this.applySeconds.observe({ part }, ms / 1000);
  }

  event(kind: string): void {
    this.events.inc({ kind });
  }

  health(overall: Level, checks: readonly { name: string; status: Level }[], repairs: Record<string, number>, connected: boolean): void {
    this.status.set(LEVEL_VALUE[overall]);
    this.checks.reset();
    for (const c of checks) this.checks.set({ check: c.name }, LEVEL_VALUE[c.status]);
    for (const [what, n] of Object.entries(repairs)) this.repairs.set({ what }, n);
    this.connected.set(connected ? 1 : 0);
  }
}

/** Serves /metrics and /status on host:port; resolves once listening. */
export async function serveLocal(listen: string, metrics: AgentMetrics, status: () => unknown): Promise<Server> {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
    } else if (path === '/metrics') {
      metrics.registry.metrics().then((text) => {
        res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(text);
      }, (err: unknown) => res.writeHead(500).end(String(err)));
    } else if (path === '/status') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(`${JSON.stringify(status(), null, 2)}\n`);
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics or /status\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return server;
}
