// The process metrics both daemons export, as Prometheus' own linter
// (`promtool check metrics`) accepts them: prom-client's default collectors
// include gauges named ..._total (active handles, requests, resources), which
// the exposition format reserves for counters. Those are dropped; the same
// numbers remain by type in ..._active_handles and friends.
import { type Registry, collectDefaultMetrics } from 'prom-client';

/** Registers the default process and Node.js metrics under `prefix` on `registry`, lint-clean. */
export function processMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix });
  for (const m of registry.getMetricsAsArray()) {
    const { name, type } = m as unknown as { name: string; type: string };
    if (name.endsWith('_total') && type !== 'counter') registry.removeSingleMetric(name);
  }
}
