// Reading BGP state from a lab FRR: session states per peer, waiting for
// Established. Keyed by the neighbor as FRR prints it: the interface name for
// unnumbered peers, the address otherwise.
import { waitFor } from './exec.js';
import type { Frr } from './frr.js';

export interface PeerState {
  readonly state: string;
  readonly remoteAs: number;
  readonly prefixesReceived: number;
  readonly connectionsEstablished: number;
  readonly connectionsDropped: number;
}

interface RawPeer {
  state?: string;
  remoteAs?: number;
  pfxRcd?: number;
  connectionsEstablished?: number;
  connectionsDropped?: number;
}

/**
 * Peers of `show bgp summary json` (IPv4 unicast; the IPv6 table's peers are
 * merged in when the session only carries IPv6). Tolerates an empty `{}`
 * from a bgpd without a BGP instance.
 */
export function parseBgpSummary(json: unknown): Map<string, PeerState> {
  const peers = new Map<string, PeerState>();
  const root = (json ?? {}) as Record<string, { peers?: Record<string, RawPeer> } | undefined>;
  for (const afi of ['ipv4Unicast', 'ipv6Unicast']) {
    for (const [name, p] of Object.entries(root[afi]?.peers ?? {})) {
      if (peers.has(name)) continue;
      peers.set(name, {
        state: p.state ?? 'unknown',
        remoteAs: p.remoteAs ?? 0,
        prefixesReceived: p.pfxRcd ?? 0,
        connectionsEstablished: p.connectionsEstablished ?? 0,
        connectionsDropped: p.connectionsDropped ?? 0,
      });
    }
  }
  return peers;
}

export async function bgpPeers(frr: Frr): Promise<Map<string, PeerState>> {
  return parseBgpSummary(await frr.vtyshJson('show bgp summary json'));
}

/** Waits until every named peer is Established; throws naming the laggards. */
export async function waitEstablished(frr: Frr, peers: readonly string[], timeoutMs = 30_000): Promise<Map<string, PeerState>> {
  let last = new Map<string, PeerState>();
  try {
    return await waitFor(`BGP Established on ${peers.join(', ')} in ${frr.ns.name}`, async () => {
      last = await bgpPeers(frr);
      return peers.every((p) => last.get(p)?.state === 'Established') ? last : undefined;
    }, { timeoutMs, intervalMs: 200 });
  } catch (err) {
    const states = peers.map((p) => `${p}=${last.get(p)?.state ?? 'absent'}`).join(' ');
    throw new Error(`${(err as Error).message} (${states})`, { cause: err });
  }
}
