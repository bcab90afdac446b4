// Validation of a RoutingIntent before anything is touched. Every problem is
// an IntentError naming the field ("networks[0].addresses[1]"); a refused
// intent leaves FRR and the loopbacks as they are.
import { PrefixError, contains, parseCanonical, parsePrefix } from '../../../common/prefix.js';
import { ASN_MAX, ASN_MIN, HOST_ID, HOST_ID_HINT, IFNAME, IFNAME_HINT, NETWORK_NAMES } from '../../../common/names.js';
import { BgpListen, Multipath } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import type { RoutingIntent } from '../../../proto/gen/hostnet/v1/compiled_pb.js';

export class IntentError extends Error {
  override readonly name = 'IntentError';
  constructor(readonly field: string, readonly reason: string) {
    super(`${field}: ${reason}`);
  }
}


export interface ValidNetwork {
  /** "private" or "public"; also the peer-group name. */
  readonly name: string;
  readonly loopback: string;
  /** Canonical /32 and /128 prefixes. */
  readonly v4: readonly string[];
  readonly v6: readonly string[];
  readonly uplinks: readonly string[];
  readonly acceptV4: readonly string[];
  readonly acceptV6: readonly string[];
  readonly tag: number;
}

export interface ValidIntent {
  readonly version: string;
  readonly hostId: string;
  readonly asn: number;
  readonly routerId: string;
  readonly networks: readonly ValidNetwork[];
  /** The bgpd listen port: 179, 20179, or 0 for none. */
  readonly listenPort: number;
  readonly multipath: 'ecmp' | 'active-standby';
  readonly bfd: boolean;
  /** With active-standby: the primary uplink. */
  readonly primaryUplink: string;
}

const LISTEN: Partial<Record<number, number>> = { [BgpListen.PORT_179]: 179, [BgpListen.PORT_20179]: 20179, [BgpListen.NONE]: 0 };
const MULTIPATH: Partial<Record<number, 'ecmp' | 'active-standby'>> = { [Multipath.ECMP]: 'ecmp', [Multipath.ACTIVE_STANDBY]: 'active-standby' };

/**
 * Checks the intent against itself and against the host's interfaces
 * (`interfaces`: the names that exist; uplinks must be among them). Pure.
 * Throws IntentError naming the first bad field.
 */
export function validateIntent(intent: RoutingIntent, interfaces: ReadonlySet<string>): ValidIntent {
  if (!HOST_ID.test(intent.hostId)) throw new IntentError('host_id', `"${intent.hostId.slice(0, 80)}" is not a host id (${HOST_ID_HINT})`);
  if (!Number.isInteger(intent.asn) || intent.asn < ASN_MIN || intent.asn > ASN_MAX) {
    throw new IntentError('asn', `${intent.asn} is not an ASN (${ASN_MIN}-${ASN_MAX})`);
  }
  const listenPort = LISTEN[intent.bgpListen];
  if (listenPort === undefined) throw new IntentError('bgp_listen', `${intent.bgpListen} is not PORT_179, PORT_20179 or NONE`);
  const multipath = MULTIPATH[intent.multipath];
  if (multipath === undefined) throw new IntentError('multipath', `${intent.multipath} is not ECMP or ACTIVE_STANDBY`);
  if (intent.networks.length === 0) throw new IntentError('networks', 'at least one network is required');
  const seenUplinks = new Set<string>();
  const seenLoopbacks = new Set<string>();
  const networks = intent.networks.map((n, i): ValidNetwork => {
    const f = `networks[${i}]`;
    if (!(NETWORK_NAMES as readonly string[]).includes(n.name)) throw new IntentError(`${f}.name`, `"${n.name.slice(0, 40)}" is not a network name (${NETWORK_NAMES.join(' or ')})`);
    if (!IFNAME.test(n.loopback)) throw new IntentError(`${f}.loopback`, `"${n.loopback.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
    if (intent.networks.findIndex((o) => o.name === n.name) !== i) throw new IntentError(`${f}.name`, `network ${n.name} twice`);
    if (seenLoopbacks.has(n.loopback)) throw new IntentError(`${f}.loopback`, `${n.loopback} is used by two networks`);
    seenLoopbacks.add(n.loopback);
    if (n.uplinks.length === 0) throw new IntentError(`${f}.uplinks`, 'at least one uplink is required');
    n.uplinks.forEach((u, j) => {
      if (!IFNAME.test(u)) throw new IntentError(`${f}.uplinks[${j}]`, `"${u.slice(0, 40)}" is not an interface name (${IFNAME_HINT})`);
      if (!interfaces.has(u)) throw new IntentError(`${f}.uplinks[${j}]`, `interface ${u} does not exist on this host`);
      if (seenUplinks.has(u)) throw new IntentError(`${f}.uplinks[${j}]`, `uplink ${u} is listed twice`);
      seenUplinks.add(u);
    });
    const pools = n.addressPools.map((p, j) => {
      try {
        return parsePrefix(parseCanonical(p).text);
      } catch (err) {
        throw new IntentError(`${f}.address_pools[${j}]`, err instanceof PrefixError ? err.message : 'is not a prefix');
      }
    });
    const v4: string[] = [];
    const v6: string[] = [];
    if (n.addresses.length === 0) throw new IntentError(`${f}.addresses`, 'at least one address is required');
    n.addresses.forEach((a, j) => {
      let p;
      try {
        p = parsePrefix(a);
      } catch (err) {
        throw new IntentError(`${f}.addresses[${j}]`, err instanceof PrefixError ? err.message : 'is not an address');
      }
      const full = p.family === 4 ? 32 : 128;
      if (p.len !== full || !a.includes('/')) throw new IntentError(`${f}.addresses[${j}]`, `${a} is not a /${full}`);
      if (pools.length > 0 && !pools.some((pool) => contains(pool, p))) {
        throw new IntentError(`${f}.addresses[${j}]`, `${a} is outside ${n.addressPools.join(', ')}`);
      }
      const text = parseCanonical(a).text;
      if (v4.includes(text) || v6.includes(text)) throw new IntentError(`${f}.addresses[${j}]`, `${a} is listed twice`);
      (p.family === 4 ? v4 : v6).push(text);
    });
    const acceptV4: string[] = [];
    const acceptV6: string[] = [];
    n.acceptedPrefixes.forEach((a, j) => {
      try {
        const { prefix, text } = parseCanonical(a);
        (prefix.family === 4 ? acceptV4 : acceptV6).push(text);
      } catch (err) {
        throw new IntentError(`${f}.accepted_prefixes[${j}]`, err instanceof PrefixError ? err.message : 'is not a prefix');
      }
    });
    if (n.routeTag < 1 || n.routeTag > 4294967295) throw new IntentError(`${f}.route_tag`, 'must be 1-4294967295');
    return { name: n.name, loopback: n.loopback, v4, v6, uplinks: [...n.uplinks], acceptV4, acceptV6, tag: n.routeTag };
  });
  const tags = new Set(networks.map((n) => n.tag));
  if (tags.size !== networks.length) throw new IntentError('networks', 'every network needs its own route_tag');
  const routerId = intent.routerId || networks[0]?.v4[0]?.split('/')[0] || '';
  try {
    if (parsePrefix(routerId).family !== 4) throw new PrefixError('not IPv4');
  } catch {
    throw new IntentError('router_id', `"${routerId}" is not an IPv4 address`);
  }
  if (multipath === 'active-standby' && !seenUplinks.has(intent.primaryUplink)) {
    throw new IntentError('primary_uplink', `"${intent.primaryUplink}" is not one of the uplinks`);
  }
  return {
    version: intent.version,
    hostId: intent.hostId,
    asn: intent.asn,
    routerId,
    networks,
    listenPort,
    multipath,
    bfd: intent.bfd,
    primaryUplink: multipath === 'active-standby' ? intent.primaryUplink : '',
  };
}
