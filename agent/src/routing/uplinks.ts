// Why an uplink cannot carry its unnumbered BGP session, in the words the
// platform team keeps telling tenants: the link is down, has no carrier, has
// IPv6 turned off, or has no link-local address (unnumbered BGP peers over
// the IPv6 link-local addresses, RFC 5549, IPv4 included).
import { readFile } from 'node:fs/promises';
import type { AddrInfo, LinkInfo } from './rtnl.js';

const SCOPE_LINK = 253;

export interface UplinkFacts {
  readonly name: string;
  readonly link: LinkInfo | undefined;
  readonly addresses: readonly AddrInfo[];
  /** net.ipv6.conf.IF.disable_ipv6 (undefined when it cannot be read). */
  readonly ipv6Disabled: boolean | undefined;
}

/** The named cause of an uplink's trouble with its fix, or undefined when the link itself is fine. Pure. */
export function uplinkDiagnosis(f: UplinkFacts): string | undefined {
  if (!f.link) return `${f.name} does not exist on this host`;
  if (!f.link.up) return `${f.name} is administratively down: bring it up (ip link set ${f.name} up)`;
  if (!f.link.carrier) return `${f.name} has no carrier (no link to the ToR: cable, optic or switch port)`;
  if (f.ipv6Disabled) {
    return `IPv6 is disabled on ${f.name} (net.ipv6.conf.${f.name}.disable_ipv6=1): unnumbered BGP needs its link-local address; `
      + `enable it: sysctl -w net.ipv6.conf.${f.name}.disable_ipv6=0`;
  }
  const linkLocal = f.addresses.some((a) => a.index === f.link?.index && a.scope === SCOPE_LINK && a.address.startsWith('fe80:'));
  if (!linkLocal) return `${f.name} has no IPv6 link-local address: unnumbered BGP cannot start (was it deleted by hand? ip link set ${f.name} down; ip link set ${f.name} up restores it)`;
  return undefined;
}

/** net.ipv6.conf.IF.disable_ipv6 from /proc/sys (readable inside the container too). */
export async function ipv6Disabled(ifname: string): Promise<boolean | undefined> {
  const v = await readFile(`/proc/sys/net/ipv6/conf/${ifname}/disable_ipv6`, 'utf8').catch(() => undefined);
  return v === undefined ? undefined : v.trim() === '1';
}
