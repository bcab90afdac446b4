// Whether the routes the host learned from its ToRs are where traffic needs
// them: selected by zebra, installed in the kernel, with the source address
// of their network's loopback. Health that sees what traffic sees: a route
// zebra failed to install (its source address was missing at the time, say)
// leaves the host unreachable while BGP looks fine.
import type { Runner } from '../../../common/run.js';
import type { ValidIntent } from './intent.js';

/** A BGP route as zebra has it. */
export interface ZebraRoute {
  readonly prefix: string;
  readonly selected: boolean;
  readonly installed: boolean;
  /** Zebra tried and the kernel refused (`B>r`). */
  readonly failed: boolean;
  readonly tag: number;
}

/** One next hop of a kernel route. */
export interface KernelNexthop {
  readonly gateway?: string;
  readonly dev?: string;
  readonly weight?: number;
  readonly onlink: boolean;
}

/** A BGP route as the kernel has it. */
export interface KernelRoute {
  readonly prefix: string;
  readonly src: string | undefined;
  readonly metric?: number;
  readonly nexthops: readonly KernelNexthop[];
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});

/** Routes from `show ip[v6] route bgp json`. Pure. */
export function parseZebraRoutes(json: unknown): ZebraRoute[] {
  return Object.values(obj(json)).flatMap((entries) => (Array.isArray(entries) ? entries : []).map((e) => {
    const r = obj(e);
    return {
      prefix: typeof r.prefix === 'string' ? r.prefix : '', selected: r.selected === true, installed: r.installed === true, failed: r.failed === true,
      tag: typeof r.tag === 'number' ? r.tag : 0,
    };
  }));
}

/** Routes from `ip -j route show proto bgp` (host routes without their length, "default" for /0). Pure. */
export function parseKernelRoutes(json: unknown, family: 4 | 6): KernelRoute[] {
  const full = family === 4 ? 32 : 128;
  return (Array.isArray(json) ? json : []).map((e) => {
    const r = obj(e);
    const dst = typeof r.dst === 'string' ? r.dst : '';
    const prefix = dst === 'default' ? (family === 4 ? '0.0.0.0/0' : '::/0') : dst.includes('/') ? dst : `${dst}/${full}`;
    const hops = Array.isArray(r.nexthops) ? r.nexthops.map(obj) : [r];
    return {
      prefix, src: typeof r.prefsrc === 'string' ? r.prefsrc : undefined, ...(typeof r.metric === 'number' ? { metric: r.metric } : {}),
      nexthops: hops.map((h) => ({
        ...(typeof h.gateway === 'string' ? { gateway: h.gateway } : {}), ...(typeof h.dev === 'string' ? { dev: h.dev } : {}),
        ...(typeof h.weight === 'number' ? { weight: h.weight } : {}), onlink: Array.isArray(h.flags) && h.flags.includes('onlink'),
      })),
    };
  });
}

/**
 * The `ip route replace` that gives a kernel route `src` and keeps the rest
 * as it is (protocol, metric, every next hop with its weight): atomic, no
 * moment without the route. Pure.
 */
export function withSourceCommand(route: KernelRoute, src: string): string[] {
  const v6 = route.prefix.includes(':');
  const hop = (h: KernelNexthop): string[] => [
    ...(h.gateway ? ['via', ...(h.gateway.includes(':') && !v6 ? ['inet6'] : []), h.gateway] : []), ...(h.dev ? ['dev', h.dev] : []), ...(h.onlink ? ['onlink'] : []),
  ];
  const hops = route.nexthops.length > 1
    ? route.nexthops.flatMap((h) => ['nexthop', ...hop(h), ...(h.weight ? ['weight', String(h.weight)] : [])])
    : route.nexthops.flatMap(hop);
  return ['ip', v6 ? '-6' : '-4', 'route', 'replace', route.prefix, 'proto', 'bgp', ...(route.metric !== undefined ? ['metric', String(route.metric)] : []), 'src', src, ...hops];
}

export interface RouteProblem {
  readonly prefix: string;
  /** missing: not in the kernel (traffic to it is lost); source: it leaves from another address than its loopback's. */
  readonly kind: 'missing' | 'source';
  readonly text: string;
  /** For `source`: the kernel's route and the source it should have. */
  readonly fix?: { readonly route: KernelRoute; readonly src: string };
}

/**
 * What is wrong with the selected BGP routes: not in the kernel, or with
 * another source than their network's loopback address. Empty when every one
 * is right. Pure.
 */
export function routeProblems(intent: ValidIntent, zebra: readonly ZebraRoute[], kernel: readonly KernelRoute[]): RouteProblem[] {
  const inKernel = new Map(kernel.map((k) => [k.prefix, k]));
  const srcByTag = new Map(intent.networks.map((n) => [n.tag, { v4: n.v4[0]?.split('/')[0], v6: n.v6[0]?.split('/')[0], loopback: n.loopback }]));
  const out: RouteProblem[] = [];
  for (const z of zebra.filter((r) => r.selected)) {
    const k = inKernel.get(z.prefix);
    if (z.failed || !z.installed || !k) {
      out.push({ prefix: z.prefix, kind: 'missing', text: `${z.prefix} is not in the kernel${z.failed ? ' (zebra\'s install failed)' : ''}` });
      continue;
    }
    const want = srcByTag.get(z.tag);
    const src = z.prefix.includes(':') ? want?.v6 : want?.v4;
    if (want && src && k.src !== src) {
      out.push({ prefix: z.prefix, kind: 'source', text: `${z.prefix} leaves from ${k.src ?? 'no set source'}, not ${want.loopback}'s ${src}`, fix: { route: k, src } });
    }
  }
  return out;
}

/** Reads zebra's and the kernel's BGP routes (FibReader; fakes in unit tests). */
export interface FibReader {
  routes(family: 4 | 6): Promise<{ zebra: ZebraRoute[]; kernel: KernelRoute[] }>;
  /** Gives a kernel route its source address, the route otherwise unchanged. */
  setSource(route: KernelRoute, src: string): Promise<void>;
}

export function fibReader(run: Runner, vtySocket: string | undefined): FibReader {
  return {
    async routes(family) {
      const vtysh = ['vtysh', ...(vtySocket ? ['--vty_socket', vtySocket] : []), '-c', `show ${family === 4 ? 'ip' : 'ipv6'} route bgp json`];
      const [z, k] = await Promise.all([
        run(vtysh, { timeoutMs: 15_000 }),
        run(['ip', '-j', `-${family}`, 'route', 'show', 'proto', 'bgp'], { timeoutMs: 15_000 }),
      ]);
      return {
        zebra: parseZebraRoutes(z.stdout.trim() ? JSON.parse(z.stdout) : {}),
        kernel: parseKernelRoutes(k.stdout.trim() ? JSON.parse(k.stdout) : [], family),
      };
    },
    async setSource(route, src) {
      await run(withSourceCommand(route, src), { timeoutMs: 15_000 });
    },
  };
}
