// Renders the firewall model as nftables text: the whole `inet hostnet`
// table for a full apply, and the pieces (chain rule lines, set definitions)
// the diff reuses. Deterministic and pure. Each rendered line carries its
// origin ("rule web-in", "object db", "failsafe bgp") so nft's complaints can
// be traced back to the policy.
import type { Family } from '../../../common/prefix.js';
import { FAMILY, type FirewallModel, type NamedSet, type ObjectSets, TABLE, managementSetName, namedSets, objectSetName } from './model.js';
import type { ByFamily, ValidRule } from './policy.js';
import { type Addr, type PrefixSet, formatAddr, maskText } from './prefix-set.js';

/** One line of nft text and what in the policy it came from. */
export interface Line {
  readonly text: string;
  readonly origin: string;
}

export const INPUT_CHAIN = 'input';
export const ACL_CHAIN = 'acl';
export const BFD_PORTS = [3784, 3785, 4784] as const;
const ND_TYPES = 'nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert';
const ELEMENTS_PER_LINE = 16;

const quote = (s: string): string => `"${s.replace(/["\\]/g, '')}"`;
const anonSet = (items: readonly string[]): string => (items.length === 1 ? (items[0] as string) : `{ ${items.join(', ')} }`);

function ifnames(uplinks: readonly string[]): string {
  return anonSet(uplinks.map(quote));
}

/** The base chain's rules (after its type line): state, loopback, failsafes, the jump to the ACL, the final drop. */
export function inputLines(model: FirewallModel): Line[] {
  const fs = model.failsafe;
  const lines: Line[] = [
    { text: 'ct state established,related counter accept comment "base:established"', origin: 'base' },
  ];
  if (fs.uplinks.length > 0) {
    // Before the invalid-state drop: neighbour discovery is never tracked.
    lines.push({
      text: `iifname ${ifnames(fs.uplinks)} icmpv6 type { ${ND_TYPES} } ip6 hoplimit 255 counter accept comment "failsafe:nd"`,
      origin: 'failsafe nd',
    });
  }
  lines.push(
    { text: 'ct state invalid counter drop comment "base:invalid"', origin: 'base' },
    { text: 'iif "lo" counter accept comment "base:loopback"', origin: 'base' },
  );
  if (fs.uplinks.length > 0 && fs.bgpPort > 0) {
    lines.push({
      text: `iifname ${ifnames(fs.uplinks)} ip6 saddr fe80::/10 tcp dport ${fs.bgpPort} counter accept comment "failsafe:bgp"`,
      origin: 'failsafe bgp',
    });
  }
  if (fs.uplinks.length > 0 && fs.bfd) {
    lines.push({
      text: `iifname ${ifnames(fs.uplinks)} ip6 saddr fe80::/10 udp dport { ${BFD_PORTS.join(', ')} } counter accept comment "failsafe:bfd"`,
      origin: 'failsafe bfd',
    });
  }
  for (const f of [4, 6] as const) {
    for (const m of sourceMatches(model.management, f, (len) => managementSetName(f, len))) {
      lines.push({ text: `${m} counter accept comment "failsafe:management"`, origin: 'failsafe management' });
    }
  }
  lines.push(
    { text: `jump ${ACL_CHAIN}`, origin: 'base' },
    { text: 'limit rate 10/second burst 20 packets log prefix "hostnet-drop: " level info', origin: 'base' },
    { text: 'counter drop comment "final-drop"', origin: 'base' },
  );
  return lines;
}

function protoMatch(r: ValidRule): string {
  const ranges = r.ports.map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  switch (r.protocol) {
    case 'tcp':
    case 'udp':
      return ranges.length > 0 ? `${r.protocol} dport ${anonSet(ranges)}` : `meta l4proto ${r.protocol}`;
    case 'icmp':
      return 'meta l4proto icmp';
    case 'icmpv6':
      return 'meta l4proto ipv6-icmp';
    case 'any':
      return '';
  }
}

function familyPrefixes(p: ByFamily, f: Family): readonly string[] {
  return f === 4 ? p.v4 : p.v6;
}

/**
 * The source matches of a set of prefixes in one family: one per length
 * present (`ip saddr & MASK @set`; no mask for host routes; length 0 is the
 * whole family). Empty when the family has no prefixes.
 */
function sourceMatches(sets: ObjectSets, f: Family, setName: (len: number) => string): string[] {
  const set: PrefixSet = f === 4 ? sets.v4 : sets.v6;
  const ip = f === 4 ? 'ip' : 'ip6';
  const full = f === 4 ? 32 : 128;
  return set.lengths().map((len) => {
    if (len === 0) return `meta nfproto ipv${f}`;
    if (len === full) return `${ip} saddr @${setName(len)}`;
    return `${ip} saddr & ${maskText(f, len)} @${setName(len)}`;
  });
}

/** The nft lines of one ACL rule: one when it needs no address match, else one per family it can match. */
export function ruleLines(model: FirewallModel, r: ValidRule): Line[] {
  const tail = `counter ${r.action} comment ${quote(`rule:${r.id}`)}`;
  const proto = protoMatch(r);
  const origin = `rule ${r.id}`;
  const join = (...parts: string[]): string => parts.filter(Boolean).join(' ');
  if (r.source.kind === 'any' && r.destinations === null) return [{ text: join(proto, tail), origin }];
  const lines: Line[] = [];
  for (const f of [4, 6] as const) {
    if ((r.protocol === 'icmp' && f === 6) || (r.protocol === 'icmpv6' && f === 4)) continue;
    const ip = f === 4 ? 'ip' : 'ip6';
    let sources = [''];
    if (r.source.kind === 'object') {
      const sets = model.objects.get(r.source.id);
      const id = r.source.id;
      // A family the object has no prefixes in matches nothing.
      sources = sets ? sourceMatches(sets, f, (len) => objectSetName(id, f, len)) : [];
    } else if (r.source.kind === 'prefixes') {
      const list = familyPrefixes(r.source.prefixes, f);
      sources = list.length === 0 ? [] : [`${ip} saddr ${anonSet(list)}`];
    }
    let dst = '';
    if (r.destinations !== null) {
      const list = familyPrefixes(r.destinations, f);
      if (list.length === 0) continue;
      dst = `${ip} daddr ${anonSet(list)}`;
    }
    for (const src of sources) lines.push({ text: join(src, src || dst ? dst : `meta nfproto ipv${f}`, proto, tail), origin });
  }
  return lines;
}

export function aclLines(model: FirewallModel): Line[] {
  return model.rules.flatMap((r) => ruleLines(model, r));
}

/** Element lines ("a, b, c" chunks), for `elements = { ... }` or `add element`. */
export function elementChunks(family: Family, addrs: Iterable<Addr>): string[] {
  const chunks: string[] = [];
  let chunk: string[] = [];
  for (const a of addrs) {
    chunk.push(formatAddr(family, a));
    if (chunk.length === ELEMENTS_PER_LINE) {
      chunks.push(chunk.join(', '));
      chunk = [];
    }
  }
  if (chunk.length > 0) chunks.push(chunk.join(', '));
  return chunks;
}

/** Addresses in ascending order, so equal sets render equal text. */
export function sortedAddrs(family: Family, addrs: ReadonlySet<Addr>): Iterable<Addr> {
  if (family === 4) return Float64Array.from(addrs as ReadonlySet<number>).sort();
  return [...addrs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export const setType = (family: Family): string => (family === 4 ? 'ipv4_addr' : 'ipv6_addr');

/** A set's definition lines, indented for their place inside the table block. */
export function setDefinition(name: string, set: NamedSet): Line[] {
  const at = (depth: number, text: string): Line => ({ text: `${'\t'.repeat(depth)}${text}`, origin: set.origin });
  const lines: Line[] = [at(1, `set ${name} {`), at(2, `type ${setType(set.family)}`)];
  const chunks = elementChunks(set.family, sortedAddrs(set.family, set.elements));
  if (chunks.length > 0) {
    lines.push(at(2, 'elements = {'));
    chunks.forEach((c, i) => lines.push(at(3, i < chunks.length - 1 ? `${c},` : c)));
    lines.push(at(2, '}'));
  }
  lines.push(at(1, '}'));
  return lines;
}

/**
 * The whole table as one atomic replacement: create-if-missing, delete, and
 * define anew, so applying it twice gives the same kernel state.
 */
export function renderFull(model: FirewallModel, chains?: { input: readonly Line[]; acl: readonly Line[] }): Line[] {
  const lines: Line[] = [
    { text: `table ${FAMILY} ${TABLE} {}`, origin: 'base' },
    { text: `delete table ${FAMILY} ${TABLE}`, origin: 'base' },
    { text: `table ${FAMILY} ${TABLE} {`, origin: 'base' },
  ];
  const indent = (depth: number, l: Line): Line => ({ text: `${'\t'.repeat(depth)}${l.text}`, origin: l.origin });
  for (const [name, set] of namedSets(model)) lines.push(...setDefinition(name, set));
  lines.push({ text: `\tchain ${INPUT_CHAIN} {`, origin: 'base' });
  lines.push({ text: '\t\ttype filter hook input priority filter; policy drop;', origin: 'base' });
  lines.push(...(chains?.input ?? inputLines(model)).map((l) => indent(2, l)));
  lines.push({ text: '\t}', origin: 'base' });
  lines.push({ text: `\tchain ${ACL_CHAIN} {`, origin: 'base' });
  for (const l of chains?.acl ?? aclLines(model)) lines.push(indent(2, l));
  lines.push({ text: '\t}', origin: 'base' }, { text: '}', origin: 'base' });
  return lines;
}

/** Joins lines into nft input text (one trailing newline). */
export function toText(lines: readonly Line[]): string {
  return `${lines.map((l) => l.text).join('\n')}\n`;
}
