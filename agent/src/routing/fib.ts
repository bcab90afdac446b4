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

/** A BGP route as the kernel has it. */
export interface KernelRoute {
  readonly prefix: string;
  readonly src: string | undefined;
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
    return { prefix, src: typeof r.prefsrc === 'string' ? r.prefsrc : undefined };
  });
}

export interface RouteProblem {
  readonly prefix: string;
  /** missing: not in the kernel (traffic to it is lost); source: it leaves from another address than its loopback's. */
  readonly kind: 'missing' | 'source';
  readonly text: string;
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
    if (want && src && k.src !== src) out.push({ prefix: z.prefix, kind: 'source', text: `${z.prefix} leaves from ${k.src ?? 'no set source'}, not ${want.loopback}'s ${src}` });
  }
  return out;
}

/** Reads zebra's and the kernel's BGP routes (FibReader; fakes in unit tests). */
export interface FibReader {
  routes(family: 4 | 6): Promise<{ zebra: ZebraRoute[]; kernel: KernelRoute[] }>;
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
  };
}
