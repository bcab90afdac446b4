// The store's state in memory, at one revision: every resource by kind and
// key, as the engines keep it (SQLite from its own commits, etcd from its
// watch). Reads are synchronous and cheap (no decoding), so validation,
// compilation and IPAM stay pure; a transaction runs on an Overlay, which
// records what it read and what it would write, and the engine commits it
// only if nothing it read has changed since.
import type { Change, Kind, Reader, ResourceOf, Stored, Tx } from './store.js';
import { KIND_NAMES } from './store.js';

export class Snapshot implements Reader {
  private readonly byKind = new Map<Kind, Map<string, Stored<Kind>>>(KIND_NAMES.map((k) => [k, new Map()]));
  /** Sorted lists, built on demand and dropped when their kind changes. */
  private readonly sorted = new Map<Kind, Stored<Kind>[]>();
  private rev = 0;

  get revision(): number {
    return this.rev;
  }

  get<K extends Kind>(kind: K, key: string): Stored<K> | undefined {
    return this.byKind.get(kind)?.get(key) as Stored<K> | undefined;
  }

  list<K extends Kind>(kind: K): Stored<K>[] {
    let s = this.sorted.get(kind);
    if (!s) {
      s = [...(this.byKind.get(kind)?.values() ?? [])].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
      this.sorted.set(kind, s);
    }
    return s as Stored<K>[];
  }

  /** How many resources of a kind there are. */
  count(kind: Kind): number {
    return this.byKind.get(kind)?.size ?? 0;
  }

  /** Replaces everything (a full listing) at `revision`. */
  reset(items: readonly Stored<Kind>[], revision: number): void {
    for (const m of this.byKind.values()) m.clear();
    this.sorted.clear();
    for (const s of items) this.byKind.get(s.kind)?.set(s.key, s);
    this.rev = revision;
  }

  /** Applies one committed batch: puts carry their stored value, deletes only the key. */
  apply(revision: number, puts: readonly Stored<Kind>[], deletes: readonly { kind: Kind; key: string }[]): void {
    for (const s of puts) {
      this.byKind.get(s.kind)?.set(s.key, s);
      this.sorted.delete(s.kind);
    }
    for (const d of deletes) {
      if (this.byKind.get(d.kind)?.delete(d.key)) this.sorted.delete(d.kind);
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
    return merged.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
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
