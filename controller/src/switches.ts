// The ToR side of route-hijack protection: each switch's BGP configuration,
// compiled from the hosts cabled to its ports. A port with a host is a routed
// port with an unnumbered eBGP session pinned to the host's ASN that accepts
// exactly the host's own addresses on that uplink's network (no `le`, no
// subnet-wide ranges), an AS path of the host's ASN only (prepended by
// itself when it is the standby path), and a small maximum-prefix counting
// every prefix received, filtered or not, that shuts a flooding session
// (restarted a minute later); every other server port is
// a pool port (the provisioning VLAN, no BGP). Tenants have root on their
// hosts and can make their FRR advertise anything: only this filter keeps
// their routes out of the fabric. Rendered as a whole frr.conf in the order
// and spelling FRR prints back (`show running-config`), so that frr-reload
// finds nothing to change in what it applied; versioned by content. Pure.
import { createHash } from 'node:crypto';
import { BgpListen, type Host, type NetworkCatalog, type Switch } from '../../proto/gen/hostnet/v1/resources_pb.js';
import type { Reader } from './store/store.js';

/**
 * Prefixes per address family a host may send when the switch does not say:
 * a host sends one or two of its own; FRR 8.4's count before the filter ran
 * above what was sent in the lab (8 prefixes sent tripped a maximum of 8), so
 * the default leaves room.
 */
export const DEFAULT_MAX_PREFIXES = 16;

/** One routed port: the host on it and what it may advertise there. */
export interface RoutedPort {
  readonly port: string;
  readonly hostId: string;
  readonly uplink: string;
  readonly asn: number;
  /** The host's /32s and /128s on this uplink's network. */
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  /** The port the host's bgpd listens on, when not 179. */
  readonly peerPort?: number;
}

/** What a switch is to be: its routed ports (by port name) and the rest. */
export interface SwitchIntent {
  readonly name: string;
  readonly asn: number;
  readonly routerId: string;
  readonly routed: readonly RoutedPort[];
  /** Server ports without a host, in the switch's order. */
  readonly pool: readonly string[];
  readonly fabric: readonly string[];
  readonly poolVlan: number;
  /** Per address family, counted before the filter. */
  readonly maxPrefixes: number;
}

export interface CompiledSwitch {
  readonly intent: SwitchIntent;
  readonly frrConf: string;
  /** sha256 of frrConf, 16 hex digits. */
  readonly version: string;
}

/** The addresses a host advertises on one of its uplinks: those of the uplink's network. */
function addressesOn(host: Host, catalog: NetworkCatalog | undefined, uplink: string): string[] {
  const net = catalog?.networks.find((n) => (n.name === 'private' && host.uplinks.length > 0 ? host.uplinks : n.uplinks).includes(uplink));
  if (!net) return [];
  return net.name === 'public' ? [...host.publicAddresses] : [...host.addresses];
}

/** The hosts cabled to each switch, by switch name: one pass over the hosts for every switch compiled after it. */
export function hostsBySwitch(store: Reader): Map<string, Host[]> {
  const index = new Map<string, Host[]>();
  for (const { value: h } of store.list('host')) {
    for (const name of new Set(h.switchPorts.map((p) => p.switchName))) {
      const list = index.get(name);
      if (list) list.push(h);
      else index.set(name, [h]);
    }
  }
  return index;
}

/** The intent of one switch from the store's hosts (`index`: hostsBySwitch of the same store). Pure apart from reads. */
export function switchIntent(store: Reader, sw: Switch, index = hostsBySwitch(store)): SwitchIntent {
  const byPort = new Map<string, RoutedPort>();
  for (const h of index.get(sw.name) ?? []) {
    for (const sp of h.switchPorts) {
      if (sp.switchName !== sw.name || !sw.ports.includes(sp.port)) continue;
      const catalog = store.get('catalog', h.catalog)?.value;
      const addresses = addressesOn(h, catalog, sp.uplink);
      const listen = catalog?.bgpListen === BgpListen.PORT_20179 ? { peerPort: 20179 } : {};
      byPort.set(sp.port, {
        port: sp.port, hostId: h.id, uplink: sp.uplink, asn: h.asn,
        v4: addresses.filter((a) => !a.includes(':')), v6: addresses.filter((a) => a.includes(':')), ...listen,
      });
    }
  }
  return {
    name: sw.name, asn: sw.asn, routerId: sw.routerId,
    routed: sw.ports.flatMap((p) => byPort.get(p) ?? []),
    pool: sw.ports.filter((p) => !byPort.has(p)),
    fabric: [...sw.fabricPorts],
    poolVlan: sw.poolVlan,
    maxPrefixes: sw.maxPrefixes || DEFAULT_MAX_PREFIXES,
  };
}

const LIST4 = (p: string): string => `HOSTNET-${p}`;
const LIST6 = (p: string): string => `HOSTNET6-${p}`;
const ASPATH = (p: string): string => `HOSTNET-${p}`;
const RM_IN = (p: string, v6: boolean): string => `HOSTNET-IN${v6 ? '6' : ''}-${p}`;
/** A route-map without entries denies everything: what a port that has no address of a family gets. */
const RM_NONE = 'HOSTNET-NONE';

/** The whole frr.conf of a switch. Pure; deterministic. */
export function renderSwitchFrr(s: SwitchIntent): string {
  const lines: string[] = [
    'frr defaults datacenter',
    `hostname ${s.name}`,
    'log syslog informational',
    // Route-map changes take effect at once, not after the default 5 s.
    'bgp route-map delay-timer 0',
    '!',
  ];
  // Router advertisements every second: an unnumbered session starts once both sides have seen each other's link-local address.
  for (const r of s.routed) lines.push(`interface ${r.port}`, ` description hostnet host ${r.hostId} ${r.uplink}`, ' ipv6 nd ra-interval 1', 'exit', '!');
  for (const p of s.pool) lines.push(`interface ${p}`, ` description hostnet pool vlan ${s.poolVlan}`, 'exit', '!');
  for (const p of s.fabric) lines.push(`interface ${p}`, ' description hostnet fabric', ' ipv6 nd ra-interval 1', 'exit', '!');
  lines.push(`router bgp ${s.asn}`, ` bgp router-id ${s.routerId}`);
  for (const r of s.routed) {
    lines.push(` neighbor ${r.port} interface remote-as ${r.asn}`);
    if (r.peerPort !== undefined) lines.push(` neighbor ${r.port} port ${r.peerPort}`);
    // A deployed host's agent may start any moment: retry a refused connect after 1 s, not the default 10 s.
    lines.push(` neighbor ${r.port} timers connect 1`);
  }
  for (const p of s.fabric) lines.push(` neighbor ${p} interface remote-as external`, ` neighbor ${p} timers connect 1`);
  for (const v6 of [false, true]) {
    lines.push(' !', ` address-family ${v6 ? 'ipv6' : 'ipv4'} unicast`);
    for (const r of s.routed) {
      if (v6) lines.push(`  neighbor ${r.port} activate`);
      const has = (v6 ? r.v6 : r.v4).length > 0;
      // What the host sends is kept before the filter (soft-reconfiguration) so that maximum-prefix counts it
      // all (force): a flood of prefixes the filter drops still shuts the session. FRR 8.4 counts when it
      // accepts a route from the host (the host's own, sent again at every session start or refresh): until
      // then a flood of dropped prefixes only is kept in the switch's memory (docs/routing.md).
      lines.push(`  neighbor ${r.port} soft-reconfiguration inbound`);
      lines.push(`  neighbor ${r.port} route-map ${has ? RM_IN(r.port, v6) : RM_NONE} in`);
      lines.push(`  neighbor ${r.port} maximum-prefix ${s.maxPrefixes} restart 1 force`);
    }
    if (v6) for (const p of s.fabric) lines.push(`  neighbor ${p} activate`);
    lines.push(' exit-address-family');
  }
  lines.push('exit', '!');
  const v4Lists = s.routed.flatMap((r) => r.v4.map((a, i) => `ip prefix-list ${LIST4(r.port)} seq ${(i + 1) * 5} permit ${a}`));
  if (v4Lists.length > 0) lines.push(...v4Lists, '!');
  const v6Lists = s.routed.flatMap((r) => r.v6.map((a, i) => `ipv6 prefix-list ${LIST6(r.port)} seq ${(i + 1) * 5} permit ${a}`));
  if (v6Lists.length > 0) lines.push(...v6Lists, '!');
  // The host's own ASN only: once (its routes), or repeated (its standby path's prepends). A spoofed origin fails.
  const paths = s.routed.map((r) => `bgp as-path access-list ${ASPATH(r.port)} seq 5 permit ^${r.asn}(_${r.asn})*$`);
  if (paths.length > 0) lines.push(...paths, '!');
  for (const r of s.routed) {
    for (const v6 of [false, true]) {
      if ((v6 ? r.v6 : r.v4).length === 0) continue;
      lines.push(`route-map ${RM_IN(r.port, v6)} permit 10`,
        ` match ${v6 ? 'ipv6' : 'ip'} address prefix-list ${v6 ? LIST6(r.port) : LIST4(r.port)}`,
        ` match as-path ${ASPATH(r.port)}`, 'exit', '!');
    }
  }
  if (s.routed.some((r) => r.v4.length === 0 || r.v6.length === 0)) lines.push(`route-map ${RM_NONE} deny 10`, 'exit', '!');
  return `${lines.join('\n')}\n`;
}

/** A switch's intent, its frr.conf and the content version (`index`: hostsBySwitch, when compiling several). */
export function compileSwitch(store: Reader, sw: Switch, index?: Map<string, Host[]>): CompiledSwitch {
  const intent = switchIntent(store, sw, index);
  const frrConf = renderSwitchFrr(intent);
  return { intent, frrConf, version: createHash('sha256').update(frrConf).digest('hex').slice(0, 16) };
}
