// The store's state in memory, at one revision: every resource by kind and
// key, as the engines keep it (SQLite from its own commits, etcd from its
// watch). Reads are synchronous and cheap (no decoding), so validation,
// compilation and IPAM stay pure; a transaction runs on an Overlay, which
// records what it read and what it would write, and the engine commits it
// only if nothing it read has changed since.
import type { Host } from '../../../proto/gen/hostnet/v1/resources_pb.js';
import { AddressIndex, addressesOf, poolRange } from '../ipam.js';
import { parsePrefix } from '../../../common/prefix.js';
import type { Change, Kind, Reader, ResourceOf, Stored, Tx } from './store.js';
import { KIND_NAMES } from './store.js';

/**
 * Who holds an address in the index: a host by its id, a released host
 * (waiting for its switches) as "released/ID".
 */
export const holder = (kind: 'host' | 'released', key: string): string => (kind === 'host' ? key : `released/${key}`);

const byKey = (a: Stored<Kind>, b: Stored<Kind>): number => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

/** The first index of `xs` (sorted by key) whose key is >= key. */
function at(xs: readonly Stored<Kind>[], key: string): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((xs[mid] as Stored<Kind>).key < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class Snapshot implements Reader {
  private readonly byKind = new Map<Kind, Map<string, Stored<Kind>>>(KIND_NAMES.map((k) => [k, new Map()]));
  /** Sorted lists, built on first use and then kept sorted change by change. */
  private readonly sorted = new Map<Kind, Stored<Kind>[]>();
  /** Who holds which address (IPAM). */
  private readonly addresses = new AddressIndex();
  private rev = 0;

  get revision(): number {
    return this.rev;
  }

  get<K extends Kind>(kind: K, key: string): Stored<K> | undefined {
    return this.byKind.get(kind)?.get(key) as Stored<K> | undefined;
  }

  /** Sorted by key; the array is the snapshot's own (read it, never change it; it changes with the snapshot). */
  list<K extends Kind>(kind: K): Stored<K>[] {
    let s = this.sorted.get(kind);
    if (!s) {
      s = [...(this.byKind.get(kind)?.values() ?? [])].sort(byKey);
      this.sorted.set(kind, s);
    }
    return s as Stored<K>[];
  }

  hostOfAddress(address: string): string | undefined {
    return this.addresses.owner(address);
  }

  lowestFreeAddress(pool: string, skip?: ReadonlySet<string>): string | undefined {
    return this.addresses.lowestFree(pool, skip);
  }

  /** How many resources of a kind there are. */
  count(kind: Kind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  /** Replaces everything (a full listing) at `revision`. */
  reset(items: readonly Stored<Kind>[], revision: number): void {
    for (const m of this.byKind.values()) m.clear();
    this.sorted.clear();
    this.addresses.clear();
    for (const s of items) {
      this.byKind.get(s.kind)?.set(s.key, s);
      if (s.kind === 'host' || s.kind === 'released') for (const a of addressesOf(s.value as Host)) this.addresses.add(a, holder(s.kind, s.key));
    }
    this.rev = revision;
  }

  /** Applies one committed batch: puts carry their stored value, deletes only the key. */
  apply(revision: number, puts: readonly Stored<Kind>[], deletes: readonly { kind: Kind; key: string }[]): void {
    for (const s of puts) {
      const m = this.byKind.get(s.kind);
      const before = m?.get(s.key);
      m?.set(s.key, s);
      if (s.kind === 'host' || s.kind === 'released') this.addresses.replace(holder(s.kind, s.key), addressesOf(before?.value as Host | undefined), addressesOf(s.value as Host));
      const xs = this.sorted.get(s.kind);
      if (xs) {
        const i = at(xs, s.key);
        if (xs[i]?.key === s.key) xs[i] = s;
        else xs.splice(i, 0, s);
      }
    }
    for (const d of deletes) {
      const m = this.byKind.get(d.kind);
      const before = m?.get(d.key);
      if (!before || !m?.delete(d.key)) continue;
      if (d.kind === 'host' || d.kind === 'released') this.addresses.replace(holder(d.kind, d.key), addressesOf(before.value as Host), []);
      const xs = this.sorted.get(d.kind);
      if (xs) {
        const i = at(xs, d.key);
        if (xs[i]?.key === d.key) xs.splice(i, 1);
      }
    }
    this.rev = Math.max(this.rev, revision);
  }
}

/** One write of a transaction: a value to put, or undefined to delete. */
export interface Write {
  readonly kind: Kind;
  readonly key: string;
  readonly value: ResourceOf<Kind> | undefined;
}

/**
 * A transaction on a Snapshot: reads see the transaction's own writes first;
 * every read is recorded (the kinds listed, the keys got with the revision
 * they had, 0 when absent), so the engine can tell whether a concurrent
 * commit invalidated it.
 */
export class Overlay implements Tx {
  readonly writes = new Map<string, Write>();
  /** kind/key -> the revision read (0: absent). */
  readonly reads = new Map<string, { kind: Kind; key: string; revision: number }>();
  /** Kinds read as a whole (list). */
  readonly listed = new Set<Kind>();

  constructor(private readonly base: Reader) {}

  get<K extends Kind>(kind: K, key: string): Stored<K> | undefined {
    const id = `${kind}/${key}`;
    const w = this.writes.get(id);
    if (w) return w.value === undefined ? undefined : { kind, key, value: w.value as ResourceOf<K>, revision: 0 };
    const s = this.base.get(kind, key);
    if (!this.reads.has(id)) this.reads.set(id, { kind, key, revision: s?.revision ?? 0 });
    return s;
  }

  list<K extends Kind>(kind: K): Stored<K>[] {
    this.listed.add(kind);
    const mine = [...this.writes.values()].filter((w) => w.kind === kind);
    const base = this.base.list(kind);
    if (mine.length === 0) return base;
    const touched = new Set(mine.map((w) => w.key));
    const merged = [
      ...base.filter((s) => !touched.has(s.key)),
      ...mine.flatMap((w) => (w.value === undefined ? [] : [{ kind, key: w.key, value: w.value as ResourceOf<K>, revision: 0 }])),
    ];
    return merged.sort(byKey);
  }

  hostOfAddress(address: string): string | undefined {
    this.listed.add('host');
    for (const w of this.writes.values()) {
      if ((w.kind === 'host' || w.kind === 'released') && w.value && addressesOf(w.value as Host).includes(address)) return holder(w.kind, w.key);
    }
    const owner = this.base.hostOfAddress(address);
    // Rewritten or deleted here, and (above) not holding it any more.
    return owner !== undefined && this.writes.has(owner.startsWith('released/') ? owner : `host/${owner}`) ? undefined : owner;
  }

  lowestFreeAddress(pool: string, skip: ReadonlySet<string> = new Set()): string | undefined {
    this.listed.add('host');
    const held = new Set(skip);
    const freed: string[] = [];
    for (const w of this.writes.values()) {
      if (w.kind !== 'host' && w.kind !== 'released') continue;
      const now = addressesOf(w.value as Host | undefined);
      for (const a of now) held.add(a);
      // What a release ends is free only from the next transaction on (and only when no host's write here holds it).
      if (w.kind === 'host') for (const a of addressesOf(this.base.get('host', w.key)?.value)) if (!now.includes(a)) freed.push(a);
    }
    // The lowest of: the base's lowest free (skipping what this transaction took), and what this transaction freed.
    const candidates = [this.base.lowestFreeAddress(pool, held), ...freed.filter((a) => !held.has(a) && this.freeIn(pool, a))];
    const sorted = candidates.filter((a): a is string => a !== undefined).map((a) => ({ a, n: parsePrefix(a).addr })).sort((x, y) => (x.n < y.n ? -1 : x.n > y.n ? 1 : 0));
    return sorted[0]?.a;
  }

  /** Whether `address` lies in the hand-out range of `pool`. */
  private freeIn(pool: string, address: string): boolean {
    const r = poolRange(pool);
    const p = parsePrefix(address);
    return p.family === r.family && p.addr >= r.first && p.addr <= r.last;
  }

  put<K extends Kind>(kind: K, key: string, value: ResourceOf<K>): void {
    this.writes.set(`${kind}/${key}`, { kind, key, value });
  }

  delete(kind: Kind, key: string): boolean {
    const existed = this.get(kind, key) !== undefined;
    if (existed) this.writes.set(`${kind}/${key}`, { kind, key, value: undefined });
    return existed;
  }

  /** The changes this transaction makes, for the change feed. */
  changes(revision: number): Change[] {
    return [...this.writes.values()].map((w) => ({ revision, kind: w.kind, key: w.key, op: w.value === undefined ? 'delete' : 'put' }));
  }
}
