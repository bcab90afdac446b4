// The prefixes of one object and one address family, kept as the merged,
// non-overlapping intervals an nftables interval set holds. Changes are
// incremental: adding or removing one prefix recomputes only the merged
// interval(s) around it and returns the interval-level difference, which is
// what goes to the kernel. Pure; no I/O.
import { type Family, parsePrefix, formatAddress } from '../../../common/prefix.js';

/** An inclusive address range [start, end]. */
export interface Interval {
  readonly start: bigint;
  readonly end: bigint;
}

export interface IntervalDiff {
  readonly removed: Interval[];
  readonly added: Interval[];
}

export const maxAddress = (family: Family): bigint => (family === 4 ? 0xffffffffn : (1n << 128n) - 1n);

/** The range a canonical prefix covers. */
export function prefixInterval(family: Family, addr: bigint, len: number): Interval {
  const hostBits = BigInt((family === 4 ? 32 : 128) - len);
  const start = (addr >> hostBits) << hostBits;
  return { start, end: start + (1n << hostBits) - 1n };
}

/** nft element text: a prefix when the range is one, "a-b" otherwise. */
export function formatInterval(family: Family, iv: Interval): string {
  const size = iv.end - iv.start + 1n;
  if ((size & (size - 1n)) === 0n && iv.start % size === 0n) {
    const bits = family === 4 ? 32 : 128;
    let len = bits;
    for (let s = size; s > 1n; s >>= 1n) len--;
    return `${formatAddress(family, iv.start)}/${len}`;
  }
  return `${formatAddress(family, iv.start)}-${formatAddress(family, iv.end)}`;
}

const cmpBig = (a: bigint, b: bigint): number => (a < b ? -1 : a > b ? 1 : 0);

/** First index i in sorted `arr` with key(arr[i]) >= x. */
function lowerBound<T>(arr: readonly T[], x: bigint, key: (t: T) => bigint): number {
  let lo = 0;
  let hi = arr.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (key(arr[mid] as T) < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Merges ranges sorted by start; touching ranges (end + 1 == start) merge too. */
function mergeSorted(sorted: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const iv of sorted) {
    const last = out[out.length - 1];
    if (last && iv.start <= last.end + 1n) {
      if (iv.end > last.end) out[out.length - 1] = { start: last.start, end: iv.end };
    } else {
      out.push(iv);
    }
  }
  return out;
}

const sameInterval = (a: Interval, b: Interval): boolean => a.start === b.start && a.end === b.end;

/**
 * The prefixes of one object in one family. `prefixes` holds every distinct
 * prefix range sorted by start; `merged` is their union.
 */
export class IntervalSet {
  private prefixes: Interval[];
  private mergedList: Interval[];

  private constructor(readonly family: Family, prefixes: Interval[]) {
    this.prefixes = prefixes;
    this.mergedList = mergeSorted(prefixes);
  }

  /** Builds from canonical-or-not prefix texts of `family`; duplicates collapse. Throws PrefixError. */
  static fromPrefixes(family: Family, texts: Iterable<string>): IntervalSet {
    const list: Interval[] = [];
    for (const t of texts) {
      const p = parsePrefix(t);
      if (p.family !== family) throw new RangeError(`${t} is not an IPv${family} prefix`);
      list.push(prefixInterval(family, p.addr, p.len));
    }
    list.sort((a, b) => cmpBig(a.start, b.start) || cmpBig(a.end, b.end));
    const dedup = list.filter((iv, i) => i === 0 || !sameInterval(iv, list[i - 1] as Interval));
    return new IntervalSet(family, dedup);
  }

  /** An independent copy; changes to one never show in the other. */
  clone(): IntervalSet {
    const copy = new IntervalSet(this.family, []);
    copy.prefixes = this.prefixes.slice();
    copy.mergedList = this.mergedList;
    return copy;
  }

  /** The prefixes as canonical texts, sorted. */
  prefixTexts(): string[] {
    return this.prefixes.map((iv) => formatInterval(this.family, iv));
  }

  get merged(): readonly Interval[] {
    return this.mergedList;
  }

  get prefixCount(): number {
    return this.prefixes.length;
  }

  has(iv: Interval): boolean {
    const i = lowerBound(this.prefixes, iv.start, (p) => p.start);
    for (let j = i; j < this.prefixes.length && (this.prefixes[j] as Interval).start === iv.start; j++) {
      if ((this.prefixes[j] as Interval).end === iv.end) return true;
    }
    return false;
  }

  /**
   * Adds and removes prefix ranges, returning how the merged intervals
   * changed. Adding a present prefix or removing an absent one is a no-op.
   */
  change(add: readonly Interval[], remove: readonly Interval[]): IntervalDiff {
    const removed: Interval[] = [];
    const added: Interval[] = [];
    for (const iv of remove) this.one(iv, false, removed, added);
    for (const iv of add) this.one(iv, true, removed, added);
    // A range removed by one step and re-added by another cancels out.
    const key = (iv: Interval): string => `${iv.start}-${iv.end}`;
    const addedKeys = new Set(added.map(key));
    const removedKeys = new Set(removed.map(key));
    return {
      removed: removed.filter((iv) => !addedKeys.has(key(iv))),
      added: added.filter((iv) => !removedKeys.has(key(iv))),
    };
  }

  private one(iv: Interval, adding: boolean, removed: Interval[], added: Interval[]): void {
    const present = this.has(iv);
    if (adding === present) return;
    // Merged intervals touching [iv.start - 1, iv.end + 1] are the only ones that can change.
    const m = this.mergedList;
    let first = lowerBound(m, iv.start, (x) => x.end + 1n);
    if (first > 0 && (m[first - 1] as Interval).end + 1n >= iv.start) first--;
    let last = first;
    while (last < m.length && (m[last] as Interval).start <= iv.end + 1n) last++;
    const old = m.slice(first, last);
    const hullStart = old.length > 0 && (old[0] as Interval).start < iv.start ? (old[0] as Interval).start : iv.start;
    const lastOld = old[old.length - 1];
    const hullEnd = lastOld && lastOld.end > iv.end ? lastOld.end : iv.end;

    const pos = lowerBound(this.prefixes, iv.start, (p) => p.start);
    if (adding) {
      let at = pos;
      while (at < this.prefixes.length && (this.prefixes[at] as Interval).start === iv.start
        && (this.prefixes[at] as Interval).end < iv.end) at++;
      this.prefixes.splice(at, 0, iv);
    } else {
      let at = pos;
      while (!sameInterval(this.prefixes[at] as Interval, iv)) at++;
      this.prefixes.splice(at, 1);
    }
    const lo = lowerBound(this.prefixes, hullStart, (p) => p.start);
    const hi = lowerBound(this.prefixes, hullEnd + 1n, (p) => p.start);
    const fresh = mergeSorted(this.prefixes.slice(lo, hi));
    this.mergedList = [...m.slice(0, first), ...fresh, ...m.slice(last)];
    const oldKeys = new Set(old.map((x) => `${x.start}-${x.end}`));
    const freshKeys = new Set(fresh.map((x) => `${x.start}-${x.end}`));
    for (const x of old) if (!freshKeys.has(`${x.start}-${x.end}`)) removed.push(x);
    for (const x of fresh) if (!oldKeys.has(`${x.start}-${x.end}`)) added.push(x);
  }
}
