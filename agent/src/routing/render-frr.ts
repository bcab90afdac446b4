// renderFrr(intent): the host's whole frr.conf, written in the order and
// spelling FRR itself prints back (`show running-config`), so that after an
// apply `frr-reload.py --test` finds nothing to change and a re-apply never
// touches a session. Golden files pin the text; an integration test checks
// every golden against a real FRR. Pure.
import type { ValidIntent, ValidNetwork } from './intent.js';

const OWN = (n: ValidNetwork, v6: boolean): string => `HOSTNET-OWN${v6 ? '6' : ''}-${n.name}`;
const ACCEPT = (n: ValidNetwork, v6: boolean): string => `HOSTNET-ACCEPT${v6 ? '6' : ''}-${n.name}`;
const RM_IN = (n: ValidNetwork, standby: boolean): string => `HOSTNET-IN-${n.name}${standby ? '-STANDBY' : ''}`;
const RM_OUT = (n: ValidNetwork, standby: boolean): string => `HOSTNET-OUT-${n.name}${standby ? '-STANDBY' : ''}`;
const AS_LOCAL = 'HOSTNET-LOCAL';
const RM_SRC = 'HOSTNET-SRC';
const RM_SRC6 = 'HOSTNET-SRC6';
/** Prepends on the standby uplink, and the local preference of what it teaches us. */
const STANDBY_PREPEND = 3;
const STANDBY_LOCAL_PREF = 50;

/** `permit P` for a host route, `permit P le N` for anything shorter. */
function permitWithin(prefix: string): string {
  const [, len] = prefix.split('/');
  const full = prefix.includes(':') ? 128 : 32;
  return Number(len) === full ? `permit ${prefix}` : `permit ${prefix} le ${full}`;
}

function prefixList(kind: 'ip' | 'ipv6', name: string, entries: readonly string[]): string[] {
  return entries.map((e, i) => `${kind} prefix-list ${name} seq ${(i + 1) * 5} ${e}`);
}

/** Uplinks of `n` that are standby (active-standby mode: every uplink but the primary). */
function standbyUplinks(intent: ValidIntent, n: ValidNetwork): string[] {
  return intent.multipath === 'active-standby' ? n.uplinks.filter((u) => u !== intent.primaryUplink) : [];
}

function addressFamily(intent: ValidIntent, v6: boolean): string[] {
  const lines: string[] = [];
  const nets = intent.networks.filter((n) => (v6 ? n.v6.length > 0 || n.acceptV6.length > 0 : true));
  if (nets.length === 0) return lines;
  lines.push(` address-family ${v6 ? 'ipv6' : 'ipv4'} unicast`);
  for (const n of nets) for (const a of v6 ? n.v6 : n.v4) lines.push(`  network ${a}`);
  for (const n of nets) {
    if (v6) lines.push(`  neighbor ${n.name} activate`);
    lines.push(`  neighbor ${n.name} route-map ${RM_IN(n, false)} in`);
    lines.push(`  neighbor ${n.name} route-map ${RM_OUT(n, false)} out`);
    for (const u of standbyUplinks(intent, n)) {
      lines.push(`  neighbor ${u} route-map ${RM_IN(n, true)} in`);
      lines.push(`  neighbor ${u} route-map ${RM_OUT(n, true)} out`);
    }
  }
  lines.push(' exit-address-family');
  return lines;
}

function routeMaps(intent: ValidIntent, n: ValidNetwork): string[] {
  const lines: string[] = [];
  const hasV6 = n.v6.length > 0 || n.acceptV6.length > 0;
  for (const standby of standbyUplinks(intent, n).length > 0 ? [false, true] : [false]) {
    // In: only the accepted prefixes, tagged for the source-address route-map.
    lines.push(`route-map ${RM_IN(n, standby)} permit 10`, ` match ip address prefix-list ${ACCEPT(n, false)}`);
    if (standby) lines.push(` set local-preference ${STANDBY_LOCAL_PREF}`);
    lines.push(` set tag ${n.tag}`, 'exit', '!');
    if (hasV6) {
      lines.push(`route-map ${RM_IN(n, standby)} permit 20`, ` match ipv6 address prefix-list ${ACCEPT(n, true)}`);
      if (standby) lines.push(` set local-preference ${STANDBY_LOCAL_PREF}`);
      lines.push(` set tag ${n.tag}`, 'exit', '!');
    }
    // Out: only our own /32s (and /128s), originated here (empty AS path).
    const prepend = standby ? [` set as-path prepend ${Array(STANDBY_PREPEND).fill(intent.asn).join(' ')}`] : [];
    lines.push(`route-map ${RM_OUT(n, standby)} permit 10`, ` match as-path ${AS_LOCAL}`,
      ` match ip address prefix-list ${OWN(n, false)}`, ...prepend, 'exit', '!');
    if (hasV6) {
      lines.push(`route-map ${RM_OUT(n, standby)} permit 20`, ` match as-path ${AS_LOCAL}`,
        ` match ipv6 address prefix-list ${OWN(n, true)}`, ...prepend, 'exit', '!');
    }
  }
  return lines;
}

/** The source-address route-map for zebra: routes learned on a network leave from its loopback address. */
function sourceMap(intent: ValidIntent, v6: boolean): string[] {
  const name = v6 ? RM_SRC6 : RM_SRC;
  const lines: string[] = [];
  intent.networks.forEach((n, i) => {
    const src = (v6 ? n.v6 : n.v4)[0]?.split('/')[0];
    if (src) lines.push(`route-map ${name} permit ${(i + 1) * 10}`, ` match tag ${n.tag}`, ` set src ${src}`, 'exit', '!');
  });
  if (lines.length === 0) return lines;
  // Everything else installs as it is (a route-map with no match denies).
  lines.push(`route-map ${name} permit 1000`, 'exit', '!');
  return lines;
}

/** The kernel's forwarding switches, as FRR shows them in its configuration. */
export interface Forwarding {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

export interface RenderOptions {
  /** The kernel's forwarding switches (default: both off). */
  readonly forwarding?: Forwarding;
  /** A file FRR logs every command into (`log commands`), which the agent follows to see hand edits as they happen. */
  readonly commandLog?: string;
}

/**
 * The whole frr.conf for `intent`. Pure; deterministic. Forwarding is the
 * host's (and inside the container /proc/sys is read-only): the text states
 * it as it is, so that frr-reload never tries to change it.
 */
export function renderFrr(intent: ValidIntent, options: RenderOptions = {}): string {
  const forwarding = options.forwarding ?? { ipv4: false, ipv6: false };
  const lines: string[] = [
    'frr defaults datacenter',
    // Commands are logged at notice level: the file holds them and FRR's warnings, not its chatter. With
    // commands logged, syslog (the journal) takes warnings only: every vtysh call of the health checks
    // would otherwise be two lines there.
    ...(options.commandLog ? [`log file ${options.commandLog} notifications`] : []),
    options.commandLog ? 'log syslog warnings' : 'log syslog informational',
    ...(forwarding.ipv4 ? [] : ['no ip forwarding']),
    ...(forwarding.ipv6 ? [] : ['no ipv6 forwarding']),
    // Routes with their next hops inline, not in kernel nexthop objects: a
    // restarting zebra (-K) reads them back whole and keeps them working.
    'no zebra nexthop kernel enable',
    ...(options.commandLog ? ['log commands'] : []),
    // Route-map changes take effect at once instead of after the default 5 s
    // (which also holds back the first advertisement after start).
    'bgp route-map delay-timer 0',
    // The same for zebra: when FRR 10.3 starts it sometimes hands zebra
    // `ip protocol bgp route-map HOSTNET-SRC` before the route-map, and zebra
    // removes every kept BGP route until it re-runs its route-maps, 5 s later
    // by default (docs/packaging.md, "Known problem").
    'zebra route-map delay-timer 0',
    '!',
  ];
  // Router advertisements every second on the uplinks: an unnumbered session
  // can start only once each side has seen the other's link-local address,
  // and the default 10 s interval can hold a (re)start back that long.
  for (const n of intent.networks) for (const u of n.uplinks) lines.push(`interface ${u}`, ' ipv6 nd ra-interval 1', 'exit', '!');
  lines.push(
    `router bgp ${intent.asn}`,
    ` bgp router-id ${intent.routerId}`,
    // Send updates 50 ms after a change, not after the default 1 s.
    ' coalesce-time 50',
  );
  if (intent.multipath === 'ecmp') lines.push(' bgp bestpath as-path multipath-relax');
  // Graceful restart with forwarding preserved: when FRR restarts (a new
  // container image), the ToRs keep the host's /32 while the session comes back.
  lines.push(' bgp graceful-restart', ' bgp graceful-restart preserve-fw-state');
  for (const n of intent.networks) {
    lines.push(` neighbor ${n.name} peer-group`, ` neighbor ${n.name} remote-as external`);
    if (intent.bfd) lines.push(` neighbor ${n.name} bfd`);
  }
  for (const n of intent.networks) for (const u of n.uplinks) lines.push(` neighbor ${u} interface peer-group ${n.name}`);
  lines.push(' !');
  lines.push(...addressFamily(intent, false));
  const v6 = addressFamily(intent, true);
  if (v6.length > 0) lines.push(' !', ...v6);
  lines.push('exit', '!');

  for (const n of intent.networks) {
    lines.push(...prefixList('ip', OWN(n, false), n.v4.map((a) => `permit ${a}`)));
    lines.push(...prefixList('ip', ACCEPT(n, false), n.acceptV4.map(permitWithin)));
  }
  lines.push('!');
  const v6Lists = intent.networks.flatMap((n) => (n.v6.length > 0 || n.acceptV6.length > 0
    ? [...prefixList('ipv6', OWN(n, true), n.v6.map((a) => `permit ${a}`)), ...prefixList('ipv6', ACCEPT(n, true), n.acceptV6.map(permitWithin))]
    : []));
  if (v6Lists.length > 0) lines.push(...v6Lists, '!');
  lines.push(`bgp as-path access-list ${AS_LOCAL} seq 5 permit ^$`, '!');
  for (const n of intent.networks) lines.push(...routeMaps(intent, n));
  const src4 = sourceMap(intent, false);
  const src6 = sourceMap(intent, true);
  lines.push(...src4, ...src6);
  if (src4.length > 0) lines.push(`ip protocol bgp route-map ${RM_SRC}`);
  if (src6.length > 0) lines.push(`ipv6 protocol bgp route-map ${RM_SRC6}`);
  lines.push('!');
  return `${lines.join('\n')}\n`;
}
