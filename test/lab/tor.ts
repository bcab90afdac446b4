// FRR configuration of a lab ToR (or a simple lab host): eBGP unnumbered on
// its ports, IPv4 and IPv6, advertising its own loopback addresses,
// forwarding between its ports.
export interface TorConfig {
  readonly hostname: string;
  readonly asn: number;
  readonly routerId: string;
  /** Interfaces with an unnumbered eBGP session. */
  readonly ports: readonly string[];
  /** Prefixes to originate (they must be in the namespace's FIB, e.g. on lo). */
  readonly networks?: readonly string[];
  /** Port the peers listen on when not 179 (the ToR connects to it). */
  readonly peerPort?: number;
  /** The ports peerPort applies to (default: all). */
  readonly peerPortOn?: readonly string[];
  /** Use paths through different neighbouring ASes together (ECMP across ToRs). */
  readonly multipathRelax?: boolean;
  /** Per port: prefix-list of what the port's peer may advertise (route-hijack filter); IPv6 entries go to an ipv6 prefix-list. */
  readonly allowFromPort?: Readonly<Record<string, readonly string[]>>;
}

const isV6 = (entry: string): boolean => entry.includes(':');

/** Renders a ToR frr.conf. Pure. */
export function torConfig(c: TorConfig): string {
  const lines = ['frr defaults datacenter', `hostname ${c.hostname}`, 'log syslog informational', '!'];
  for (const [port, prefixes] of Object.entries(c.allowFromPort ?? {})) {
    const v4 = prefixes.filter((p) => !isV6(p));
    const v6 = prefixes.filter(isV6);
    // An empty list would permit nothing anyway; a deny-all entry keeps the name defined.
    (v4.length > 0 ? v4 : []).forEach((p, i) => lines.push(`ip prefix-list FROM-${port} seq ${(i + 1) * 5} permit ${p}`));
    if (v4.length === 0) lines.push(`ip prefix-list FROM-${port} seq 5 deny any`);
    (v6.length > 0 ? v6 : []).forEach((p, i) => lines.push(`ipv6 prefix-list FROM6-${port} seq ${(i + 1) * 5} permit ${p}`));
    if (v6.length === 0) lines.push(`ipv6 prefix-list FROM6-${port} seq 5 deny any`);
    lines.push('!', `route-map FROM-${port} permit 10`, ` match ip address prefix-list FROM-${port}`, '!');
    lines.push(`route-map FROM-${port} permit 20`, ` match ipv6 address prefix-list FROM6-${port}`, '!');
  }
  lines.push(`router bgp ${c.asn}`, ` bgp router-id ${c.routerId}`, ' no bgp ebgp-requires-policy');
  if (c.multipathRelax) lines.push(' bgp bestpath as-path multipath-relax');
  for (const p of c.ports) {
    lines.push(` neighbor ${p} interface remote-as external`);
    // Retry a refused connect after 1 s, not the default 10 s: peers start together.
    lines.push(` neighbor ${p} timers connect 1`);
    if (c.peerPort && (!c.peerPortOn || c.peerPortOn.includes(p))) lines.push(` neighbor ${p} port ${c.peerPort}`);
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    lines.push(` address-family ${family} unicast`);
    for (const n of (c.networks ?? []).filter((x) => isV6(x) === (family === 'ipv6'))) lines.push(`  network ${n}`);
    if (family === 'ipv6') for (const p of c.ports) lines.push(`  neighbor ${p} activate`);
    for (const port of Object.keys(c.allowFromPort ?? {})) lines.push(`  neighbor ${port} route-map FROM-${port} in`);
    lines.push(' exit-address-family');
  }
  lines.push('!');
  return `${lines.join('\n')}\n`;
}
