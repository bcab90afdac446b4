// Typed views of FRR's JSON: sessions per peer, neighbor details, advertised
// routes. Unnumbered peers are keyed by their interface name. Written to
// accept both FRR 8.4 (this machine) and 10.x (the container image): every
// field is optional, alternative names are tried, and anything unknown is
// ignored.
import type { Runner } from '../../../common/run.js';

export interface BgpSession {
  /** The neighbor as FRR names it: the interface for unnumbered peers. */
  readonly peer: string;
  readonly vrf: string;
  /** "Established", "Active", "Idle", ... */
  readonly state: string;
  readonly remoteAs: number;
  readonly prefixesReceived: number;
  readonly prefixesSent: number;
  readonly connectionsEstablished: number;
  readonly connectionsDropped: number;
  readonly uptimeMs: number;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : {});
const num = (...vs: unknown[]): number => {
  for (const v of vs) if (typeof v === 'number' && Number.isFinite(v)) return v;
  return 0;
};
const str = (...vs: unknown[]): string => {
  for (const v of vs) if (typeof v === 'string') return v;
  return '';
};

/**
 * Sessions from `show bgp vrf all summary json` (or `show bgp summary json`,
 * which lacks the VRF level). A peer carrying several address families is
 * reported once, from the first family that lists it.
 */
export function parseSummary(json: unknown): BgpSession[] {
  const root = obj(json);
  // With "vrf all" the top level is keyed by VRF name; without, it is keyed by address family.
  const looksLikeAfi = Object.keys(root).some((k) => /Unicast|Multicast|Evpn|Flowspec/i.test(k));
  const vrfs: [string, Json][] = looksLikeAfi ? [['default', root]] : Object.entries(root).map(([k, v]) => [k, obj(v)]);
  const out = new Map<string, BgpSession>();
  for (const [vrf, afis] of vrfs) {
    for (const [afi, body] of Object.entries(afis)) {
      if (!/Unicast/i.test(afi)) continue;
      for (const [peer, raw] of Object.entries(obj(obj(body).peers))) {
        const key = `${vrf}/${peer}`;
        if (out.has(key)) continue;
        const p = obj(raw);
        out.set(key, {
          peer,
          vrf,
          state: str(p.state, p.peerState, p.bgpState) || 'unknown',
          remoteAs: num(p.remoteAs),
          prefixesReceived: num(p.pfxRcd, p.prefixReceivedCount, p.acceptedPrefixCounter),
          prefixesSent: num(p.pfxSnt, p.prefixSentCount),
          connectionsEstablished: num(p.connectionsEstablished),
          connectionsDropped: num(p.connectionsDropped),
          uptimeMs: num(p.peerUptimeMsec, p.bgpTimerUpMsec),
        });
      }
    }
  }
  return [...out.values()];
}

export interface NeighborDetail {
  readonly peer: string;
  readonly state: string;
  readonly remoteAs: number;
  /** The peer's address: its IPv6 link-local for unnumbered sessions. */
  readonly address: string;
  readonly hostname: string;
  readonly interface: string;
}

/** Neighbors from `show bgp neighbors json`. */
export function parseNeighbors(json: unknown): NeighborDetail[] {
  return Object.entries(obj(json)).filter(([, v]) => typeof v === 'object').map(([peer, raw]) => {
    const n = obj(raw);
    return {
      peer,
      state: str(n.bgpState, n.state) || 'unknown',
      remoteAs: num(n.remoteAs),
      address: str(n.bgpNeighborAddr, n.neighborAddr, n.peerAddress),
      hostname: str(n.hostname),
      interface: str(n.bgpNeighborInterface, n.interface) || (/^[A-Za-z]/.test(peer) ? peer : ''),
    };
  });
}

/** Prefixes from `show bgp ipv4 unicast neighbors PEER advertised-routes json`, sorted. */
export function parseAdvertised(json: unknown): string[] {
  const root = obj(json);
  const routes = obj(root.advertisedRoutes ?? root.advertised_routes);
  return Object.keys(routes).sort();
}

/** Runs the reads against one FRR through vtysh. */
export class BgpReader {
  constructor(private readonly run: Runner, private readonly vtySocket: string | undefined) {}

  private async json(command: string): Promise<unknown> {
    const argv = ['vtysh', ...(this.vtySocket ? ['--vty_socket', this.vtySocket] : []), '-c', command];
    const r = await this.run(argv, { timeoutMs: 15_000 });
    return r.stdout.trim() ? JSON.parse(r.stdout) : {};
  }

  async sessions(): Promise<BgpSession[]> {
    return parseSummary(await this.json('show bgp vrf all summary json'));
  }

  async neighbors(): Promise<NeighborDetail[]> {
    return parseNeighbors(await this.json('show bgp neighbors json'));
  }

  async advertised(peer: string, family: 4 | 6 = 4): Promise<string[]> {
    return parseAdvertised(await this.json(`show bgp ${family === 4 ? 'ipv4' : 'ipv6'} unicast neighbors ${peer} advertised-routes json`));
  }
}
