// Waiting for a route to reach a namespace's kernel FIB.
import { waitFor } from './exec.js';
import type { Netns } from './lab.js';

export interface FibRoute {
  readonly dst: string;
  readonly dev?: string;
  readonly gateway?: string;
  readonly protocol?: string;
  /** Next hops of a multipath route. */
  readonly nexthops: { dev?: string; gateway?: string }[];
}

interface RawRoute {
  dst?: string;
  dev?: string;
  gateway?: string;
  via?: { family?: string; host?: string };
  protocol?: string;
  nexthops?: { dev?: string; gateway?: string; via?: { host?: string } }[];
}

function toFibRoute(r: RawRoute): FibRoute {
  return {
    dst: r.dst ?? '',
    ...(r.dev !== undefined ? { dev: r.dev } : {}),
    ...(r.gateway ?? r.via?.host ? { gateway: r.gateway ?? r.via?.host } : {}),
    ...(r.protocol !== undefined ? { protocol: r.protocol } : {}),
    nexthops: (r.nexthops ?? []).map((n) => ({ dev: n.dev, gateway: n.gateway ?? n.via?.host })),
  };
}

/** The route for exactly `prefix` in the namespace's main table, if any. */
export async function fibRoute(ns: Netns, prefix: string): Promise<FibRoute | undefined> {
  const [raw] = (await ns.routes(prefix)) as RawRoute[];
  return raw ? toFibRoute(raw) : undefined;
}

/**
 * Waits until `prefix` is in the FIB (and, when `where` says so, by that
 * protocol or through that device); throws after timeoutMs.
 */
export async function waitForRoute(
  ns: Netns,
  prefix: string,
  where: { protocol?: string; dev?: string; timeoutMs?: number } = {},
): Promise<FibRoute> {
  return waitFor(`route ${prefix} in ${ns.name}`, async () => {
    const r = await fibRoute(ns, prefix);
    if (!r) return undefined;
    if (where.protocol && r.protocol !== where.protocol) return undefined;
    if (where.dev && r.dev !== where.dev && !r.nexthops.some((n) => n.dev === where.dev)) return undefined;
    return r;
  }, { timeoutMs: where.timeoutMs ?? 30_000, intervalMs: 100 });
}
