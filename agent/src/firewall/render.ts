// Renders the firewall model as nftables text: the whole `inet hostnet`
// table for a full apply, and the pieces (chain rule lines, set definitions)
// the diff reuses. Deterministic and pure. Each rendered line carries its
// origin ("rule web-in", "object db", "failsafe bgp") so nft's complaints can
// be traced back to the policy.
import type { Family } from '../../../common/prefix.js';
import { type IntervalSet, formatInterval } from './intervals.js';
import { FAMILY, type FirewallModel, MANAGEMENT_SET, TABLE, namedSets, objectOfSet, objectSetName } from './model.js';
import type { ByFamily, ValidRule } from './policy.js';

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
  lines.push(
    { text: `ip saddr @${MANAGEMENT_SET[4]} counter accept comment "failsafe:management"`, origin: 'failsafe management' },
    { text: `ip6 saddr @${MANAGEMENT_SET[6]} counter accept comment "failsafe:management"`, origin: 'failsafe management' },
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
    let src = '';
    if (r.source.kind === 'object') {
      const sets = model.objects.get(r.source.id);
      // A family the object has no prefixes in can match nothing; its set still exists for later deltas.
      if (!sets || (f === 4 ? sets.v4 : sets.v6).prefixCount === 0) continue;
      src = `${ip} saddr @${objectSetName(r.source.id, f)}`;
    } else if (r.source.kind === 'prefixes') {
      const list = familyPrefixes(r.source.prefixes, f);
      if (list.length === 0) continue;
      src = `${ip} saddr ${anonSet(list)}`;
    }
    let dst = '';
    if (r.destinations !== null) {
      const list = familyPrefixes(r.destinations, f);
      if (list.length === 0) continue;
      dst = `${ip} daddr ${anonSet(list)}`;
    }
    if (!src && !dst) dst = `meta nfproto ipv${f}`;
    lines.push({ text: join(src, dst, proto, tail), origin });
  }
  return lines;
}

export function aclLines(model: FirewallModel): Line[] {
  return model.rules.flatMap((r) => ruleLines(model, r));
}

/** Element lines of a set ("a, b, c," chunks), for `elements = { ... }` or `add element`. */
export function elementChunks(family: Family, set: IntervalSet | readonly { start: bigint; end: bigint }[]): string[] {
  const merged = 'merged' in set ? set.merged : set;
  const chunks: string[] = [];
  for (let i = 0; i < merged.length; i += ELEMENTS_PER_LINE) {
    chunks.push(merged.slice(i, i + ELEMENTS_PER_LINE).map((iv) => formatInterval(family, iv)).join(', '));
  }
  return chunks;
}

const familyOfSet = (set: IntervalSet): Family => set.family;

/** A set's definition lines, indented for their place inside the table block. */
export function setDefinition(name: string, set: IntervalSet, origin: string): Line[] {
  const family = familyOfSet(set);
  const at = (depth: number, text: string): Line => ({ text: `${'\t'.repeat(depth)}${text}`, origin });
  const lines: Line[] = [
    at(1, `set ${name} {`),
    at(2, `type ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'}`),
    at(2, 'flags interval'),
  ];
  const chunks = elementChunks(family, set);
  if (chunks.length > 0) {
    lines.push(at(2, 'elements = {'));
    chunks.forEach((c, i) => lines.push(at(3, i < chunks.length - 1 ? `${c},` : c)));
    lines.push(at(2, '}'));
  }
  lines.push(at(1, '}'));
  return lines;
}

export function setOrigin(model: FirewallModel, name: string): string {
  const id = objectOfSet(model, name);
  return id ? `object ${id}` : 'failsafe management';
}

/**
 * The whole table as one atomic replacement: create-if-missing, delete, and
 * define anew, so applying it twice gives the same kernel state.
 */
export function renderFull(model: FirewallModel): Line[] {
  const lines: Line[] = [
    { text: `table ${FAMILY} ${TABLE} {}`, origin: 'base' },
    { text: `delete table ${FAMILY} ${TABLE}`, origin: 'base' },
    { text: `table ${FAMILY} ${TABLE} {`, origin: 'base' },
  ];
  const indent = (depth: number, l: Line): Line => ({ text: `${'\t'.repeat(depth)}${l.text}`, origin: l.origin });
  for (const [name, set] of namedSets(model)) lines.push(...setDefinition(name, set, setOrigin(model, name)));
  lines.push({ text: `\tchain ${INPUT_CHAIN} {`, origin: 'base' });
  lines.push({ text: '\t\ttype filter hook input priority filter; policy drop;', origin: 'base' });
  lines.push(...inputLines(model).map((l) => indent(2, l)));
  lines.push({ text: '\t}', origin: 'base' });
  lines.push({ text: `\tchain ${ACL_CHAIN} {`, origin: 'base' });
  lines.push(...aclLines(model).map((l) => indent(2, l)));
  lines.push({ text: '\t}', origin: 'base' }, { text: '}', origin: 'base' });
  return lines;
}

/** Joins lines into nft input text (one trailing newline). */
export function toText(lines: readonly Line[]): string {
  return `${lines.map((l) => l.text).join('\n')}\n`;
}
