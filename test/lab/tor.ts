// FRR configuration of a simple lab router (the client behind the ToRs, a
// peer in a routing test): eBGP unnumbered on its ports, IPv4 and IPv6,
// advertising its own loopback addresses, forwarding between its ports. The
// lab's ToRs are not configured with this: they run what the controller
// compiles for a switch (controller/src/switches.ts).
export interface TorConfig {
  readonly hostname: string;
  readonly asn: number;
  readonly routerId: string;
  /** Interfaces with an unnumbered eBGP session. */
  readonly ports: readonly string[];
  /** Prefixes to originate (they must be in the namespace's FIB, e.g. on lo). */
  readonly networks?: readonly string[];
  /** Use paths through different neighbouring ASes together (ECMP across ToRs). */
  readonly multipathRelax?: boolean;
}

const isV6 = (entry: string): boolean => entry.includes(':');

/** Renders the router's frr.conf. Pure. */
export function torConfig(c: TorConfig): string {
  const lines = ['frr defaults datacenter', `hostname ${c.hostname}`, 'log syslog informational', '!'];
  lines.push(`router bgp ${c.asn}`, ` bgp router-id ${c.routerId}`, ' no bgp ebgp-requires-policy');
  if (c.multipathRelax) lines.push(' bgp bestpath as-path multipath-relax');
  for (const p of c.ports) {
    lines.push(` neighbor ${p} interface remote-as external`);
    // Retry a refused connect after 1 s, not the default 10 s: peers start together.
    lines.push(` neighbor ${p} timers connect 1`);
  }
  for (const family of ['ipv4', 'ipv6'] as const) {
    lines.push(` address-family ${family} unicast`);
    for (const n of (c.networks ?? []).filter((x) => isV6(x) === (family === 'ipv6'))) lines.push(`  network ${n}`);
    if (family === 'ipv6') for (const p of c.ports) lines.push(`  neighbor ${p} activate`);
    lines.push(' exit-address-family');
  }
  lines.push('!');
  return `${lines.join('\n')}\n`;
}
