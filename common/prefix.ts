// IP prefixes: parse, check canonical form, format. Used by config loading,
// the controller's validation and the agent's compilers.
import { isIPv4, isIPv6 } from 'node:net';

export type Family = 4 | 6;

export interface Prefix {
  readonly family: Family;
  /** The network address as an integer (host bits zero when canonical). */
  readonly addr: bigint;
  readonly len: number;
}

export class PrefixError extends Error {
  override readonly name = 'PrefixError';
}

function v4ToBig(s: string): bigint {
  return s.split('.').reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
}

function v6ToBig(s: string): bigint {
  let text = s;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") becomes two hex groups.
  const v4tail = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4tail?.[1]) {
    const n = v4ToBig(v4tail[1]);
    text = text.slice(0, -v4tail[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...fill, ...tailGroups].reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** The address of `s` ("10.0.0.1", "2001:db8::1") as family and integer; throws PrefixError. */
export function parseAddress(s: string): { family: Family; addr: bigint } {
  if (isIPv4(s)) return { family: 4, addr: v4ToBig(s) };
  if (isIPv6(s) && !s.includes('%')) return { family: 6, addr: v6ToBig(s) };
  throw new PrefixError(`"${s}" is not an IP address`);
}

const bits = (family: Family): number => (family === 4 ? 32 : 128);

/**
 * Fast path for "a.b.c.d/len" in decimal without leading zeros, the form
 * almost every prefix arrives in. Undefined when `s` is anything else (the
 * general parser then decides, and reports errors).
 */
function parseV4Fast(s: string): { addr: number; len: number } | undefined {
  let addr = 0;
  let octet = -1;
  let digits = 0;
  let dots = 0;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero
      octet = octet < 0 ? c - 48 : octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else if (c === 46 /* . */ || c === 47 /* / */) {
      if (digits === 0) return undefined;
      addr = addr * 256 + octet;
      octet = -1;
      digits = 0;
      if (c === 47) break;
      if (++dots > 3) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3) return undefined;
  if (i === s.length) {
    if (digits === 0) return undefined;
    return { addr: addr * 256 + octet, len: 32 };
  }
  const rest = s.length - i - 1;
  if (rest < 1 || rest > 2) return undefined;
  const d1 = s.charCodeAt(i + 1) - 48;
  const d2 = rest === 2 ? s.charCodeAt(i + 2) - 48 : -1;
  if (d1 < 0 || d1 > 9 || (rest === 2 && (d1 === 0 || d2 < 0 || d2 > 9))) return undefined;
  const len = rest === 2 ? d1 * 10 + d2 : d1;
  return len > 32 ? undefined : { addr, len };
}

/** [network, length] as numbers for the common "a.b.c.d/len" form (host bits cleared); undefined otherwise. */
export function parseV4Prefix(s: string): [number, number] | undefined {
  const fast = s.includes('/') ? parseV4Fast(s) : undefined;
  if (!fast) return undefined;
  const size = 2 ** (32 - fast.len);
  return [Math.floor(fast.addr / size) * size, fast.len];
}

/**
 * Parses a prefix and returns it with its canonical text; `s` itself is
 * returned as the text when it is already canonical (no new string).
 * Throws PrefixError.
 */
export function parseCanonical(s: string): { prefix: Prefix; text: string } {
  const fast = s.includes('/') ? parseV4Fast(s) : undefined;
  if (fast) {
    const hostBits = 32 - fast.len;
    const network = hostBits === 32 ? 0 : Math.floor(fast.addr / 2 ** hostBits) * 2 ** hostBits;
    const prefix: Prefix = { family: 4, addr: BigInt(network), len: fast.len };
    return { prefix, text: network === fast.addr ? s : formatPrefix(prefix) };
  }
  const prefix = networkOf(parsePrefix(s));
  const text = formatPrefix(prefix);
  return { prefix, text: text === s ? s : text };
}

/** Parses "addr/len" (or a bare address as a host prefix). Host bits may be set; see isCanonical. Throws PrefixError. */
export function parsePrefix(s: string): Prefix {
  const fast = parseV4Fast(s);
  if (fast) return { family: 4, addr: BigInt(fast.addr), len: fast.len };
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  const { family, addr } = parseAddress(addrText);
  let len = bits(family);
  if (slash >= 0) {
    const lenText = s.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > bits(family)) {
      throw new PrefixError(`"${s}" has an invalid prefix length (0-${bits(family)})`);
    }
    len = Number(lenText);
  }
  return { family, addr, len };
}

function mask(family: Family, len: number): bigint {
  const total = bits(family);
  return ((1n << BigInt(total)) - 1n) ^ ((1n << BigInt(total - len)) - 1n);
}

/** The prefix with host bits cleared. */
export function networkOf(p: Prefix): Prefix {
  return { family: p.family, addr: p.addr & mask(p.family, p.len), len: p.len };
}

export function formatAddress(family: Family, addr: bigint): string {
  if (family === 4) {
    return [24n, 16n, 8n, 0n].map((sh) => String((addr >> sh) & 0xffn)).join('.');
  }
  const groups = Array.from({ length: 8 }, (_, i) => Number((addr >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first on ties.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** Canonical text: network address in RFC 5952 / dotted form, always with a length. */
export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p.family, p.addr)}/${p.len}`;
}

/** Parses `s` and returns its canonical text; throws PrefixError when it does not parse. */
export function canonicalPrefix(s: string): string {
  return parseCanonical(s).text;
}

/** True when `s` parses and is spelled exactly as canonicalPrefix would spell it. */
export function isCanonical(s: string): boolean {
  try {
    return canonicalPrefix(s) === s;
  } catch {
    return false;
  }
}

/** True when `inner` lies within `outer` (same family). */
export function contains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.len <= inner.len
    && (inner.addr & mask(outer.family, outer.len)) === (outer.addr & mask(outer.family, outer.len));
}
