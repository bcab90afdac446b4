// The prefixes of one object and one address family, grouped by prefix
// length: for each length, the set of network addresses. Each group becomes
// one plain (hash) nftables set matched as `ip saddr & MASK @set`, so packet
// classification costs one lookup per distinct length, whatever the number
// of prefixes, and adding or removing a prefix is one element in one set.
// (Measured here: one element into a 100k-element interval set costs the
// kernel 4-20 ms per commit; into a 100k hash set, 0.05-0.2 ms. See
// docs/firewall.md.) Addresses are numbers for IPv4 and bigints for IPv6.
// Pure; no I/O.
import { type Family, formatAddress } from '../../../common/prefix.js';

export type Addr = number | bigint;

/** Prefixes as parallel arrays of network addresses and lengths. */
export interface PrefixList<A extends Addr = Addr> {
  addrs: A[];
  lens: number[];
}

/** Per length: the addresses that changed. */
export type LengthChanges = Map<number, Addr[]>;

export interface PrefixSetChange {
  readonly added: LengthChanges;
  readonly removed: LengthChanges;
  /** Whether a length gained its first prefix or lost its last (the rules that match it change). */
  readonly lengthsChanged: boolean;
  /** Reverts the change. */
  readonly undo: () => void;
}

const v4Text = (a: number): string => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;

/** An address as nft text. */
export function formatAddr(family: Family, a: Addr): string {
  return family === 4 ? v4Text(Number(a)) : formatAddress(6, BigInt(a));
}

/** The netmask of a prefix length as nft text (e.g. 255.255.255.0, ffff:ffff::). */
export function maskText(family: Family, len: number): string {
  if (family === 4) return v4Text(len === 0 ? 0 : (0xffffffff - (2 ** (32 - len) - 1)));
  const all = (1n << 128n) - 1n;
  return formatAddress(6, all ^ ((1n << BigInt(128 - len)) - 1n));
}

export class PrefixSet {
  private readonly byLen = new Map<number, Set<Addr>>();
  private count = 0;

  private constructor(readonly family: Family) {}

  /** Builds from network addresses and lengths (host bits already cleared); duplicates collapse. */
  static from(family: Family, list: PrefixList): PrefixSet {
    const s = new PrefixSet(family);
    for (let i = 0; i < list.addrs.length; i++) s.insert(list.lens[i] as number, list.addrs[i] as Addr);
    return s;
  }

  private insert(len: number, addr: Addr): boolean {
    let set = this.byLen.get(len);
    if (!set) {
      set = new Set();
      this.byLen.set(len, set);
    }
    if (set.has(addr)) return false;
    set.add(addr);
    this.count++;
    return true;
  }

  private delete(len: number, addr: Addr): boolean {
    const set = this.byLen.get(len);
    if (!set?.delete(addr)) return false;
    if (set.size === 0) this.byLen.delete(len);
    this.count--;
    return true;
  }

  get prefixCount(): number {
    return this.count;
  }

  /** The lengths present, ascending. */
  lengths(): number[] {
    return [...this.byLen.keys()].sort((a, b) => a - b);
  }

  /** The network addresses of one length (the live set: do not modify). */
  addresses(len: number): ReadonlySet<Addr> {
    return this.byLen.get(len) ?? new Set();
  }

  /** Whether an address (a number for IPv4, a bigint for IPv6) lies in one of the prefixes. */
  contains(addr: Addr): boolean {
    for (const len of this.byLen.keys()) {
      const net = this.family === 4
        ? (len === 0 ? 0 : ((Number(addr) >>> (32 - len)) << (32 - len)) >>> 0)
        : BigInt(addr) & (((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n));
      if (this.byLen.get(len)?.has(net)) return true;
    }
    return false;
  }

  /** The prefixes as canonical texts, by length then address. */
  prefixTexts(): string[] {
    const out: string[] = [];
    for (const len of this.lengths()) {
      const addrs = [...this.addresses(len)].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const a of addrs) out.push(`${formatAddr(this.family, a)}/${len}`);
    }
    return out;
  }

  /**
   * Removes, then adds, prefixes in place; returns what actually changed and
   * how to undo it. Adding a present prefix or removing an absent one is a no-op.
   */
  change(add: PrefixList, remove: PrefixList): PrefixSetChange {
    const before = new Set(this.byLen.keys());
    const added: LengthChanges = new Map();
    const removed: LengthChanges = new Map();
    const note = (m: LengthChanges, len: number, a: Addr): void => {
      const list = m.get(len);
      if (list) list.push(a);
      else m.set(len, [a]);
    };
    for (let i = 0; i < remove.addrs.length; i++) {
      const len = remove.lens[i] as number;
      const a = remove.addrs[i] as Addr;
      if (this.delete(len, a)) note(removed, len, a);
    }
    for (let i = 0; i < add.addrs.length; i++) {
      const len = add.lens[i] as number;
      const a = add.addrs[i] as Addr;
      if (this.insert(len, a)) note(added, len, a);
    }
    const after = new Set(this.byLen.keys());
    const lengthsChanged = before.size !== after.size || [...before].some((l) => !after.has(l));
    return {
      added,
      removed,
      lengthsChanged,
      undo: () => {
        for (const [len, addrs] of added) for (const a of addrs) this.delete(len, a);
        for (const [len, addrs] of removed) for (const a of addrs) this.insert(len, a);
      },
    };
  }

  /** Per length, what `other` has that this lacks (add) and the reverse (remove). */
  diffTo(other: PrefixSet): { add: LengthChanges; remove: LengthChanges } {
    const add: LengthChanges = new Map();
    const remove: LengthChanges = new Map();
    for (const len of new Set([...this.byLen.keys(), ...other.byLen.keys()])) {
      const mine = this.addresses(len);
      const theirs = other.addresses(len);
      const a = [...theirs].filter((x) => !mine.has(x));
      const r = [...mine].filter((x) => !theirs.has(x));
      if (a.length > 0) add.set(len, a);
      if (r.length > 0) remove.set(len, r);
    }
    return { add, remove };
  }
}
