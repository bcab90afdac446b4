// The embedded store engine: SQLite through better-sqlite3, WAL, every
// transaction atomic and durable (synchronous=FULL), schema migrations by
// PRAGMA user_version; the resources also in memory (a Snapshot), read from
// there. One process writes (one controller), so a transaction's reads can
// never be invalidated by another writer: it runs on the snapshot and
// commits. A kill -9 at any point leaves a database that opens and holds
// only whole transactions.
import Database from 'better-sqlite3';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Change, type ChangeBatch, type Kind, KINDS, type ResourceOf, type Store, type Stored, type Tx } from './store.js';
import { Overlay, Snapshot } from './snapshot.js';
import { type StatusRecord, type StatusStore, decodeRollout, encodeRollout } from './status.js';

/** Each entry moves the schema one version up; never edit a released one, append. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE resources (
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     value BLOB NOT NULL,
     revision INTEGER NOT NULL,
     PRIMARY KEY (kind, key)
   ) WITHOUT ROWID;
   CREATE TABLE changes (
     revision INTEGER NOT NULL,
     kind TEXT NOT NULL,
     key TEXT NOT NULL,
     op TEXT NOT NULL CHECK (op IN ('put', 'delete'))
   );
   CREATE INDEX changes_by_revision ON changes (revision);
   CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
   INSERT INTO meta (name, value) VALUES ('revision', 0);`,
  `CREATE TABLE rollout (
     host TEXT PRIMARY KEY,
     sent TEXT NOT NULL,
     applied TEXT NOT NULL,
     nacked TEXT NOT NULL,
     nack_error BLOB,
     updated_at INTEGER NOT NULL
   ) WITHOUT ROWID;`,
];

/** Change-log rows kept for watchers that start behind (older ones are trimmed). */
const CHANGES_KEPT = 100_000;

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

interface Row {
  kind: string;
  key: string;
  value: Buffer;
  revision: number;
}

export type SqliteStore = Store & StatusStore;

/** Opens (creating and migrating as needed) the database at `path` (":memory:" for tests). */
export function openSqliteStore(path: string): SqliteStore {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  const version = db.pragma('user_version', { simple: true }) as number;
  if (version > MIGRATIONS.length) {
    db.close();
    throw new StoreError(`${path} has schema version ${version}, newer than this controller (${MIGRATIONS.length})`);
  }
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] as string);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }

  const q = {
    all: db.prepare<[], Row>('SELECT kind, key, value, revision FROM resources'),
    put: db.prepare('INSERT INTO resources (kind, key, value, revision) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, revision = excluded.revision'),
    del: db.prepare('DELETE FROM resources WHERE kind = ? AND key = ?'),
    change: db.prepare('INSERT INTO changes (revision, kind, key, op) VALUES (?, ?, ?, ?)'),
    trim: db.prepare('DELETE FROM changes WHERE revision <= ?'),
    oldest: db.prepare<[], { r: number | null }>('SELECT MIN(revision) AS r FROM changes'),
    revision: db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'revision'"),
    setRevision: db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'"),
    since: db.prepare<[number], Change>('SELECT revision, kind, key, op FROM changes WHERE revision > ? ORDER BY revision, rowid'),
    putRollout: db.prepare('INSERT INTO rollout (host, sent, applied, nacked, nack_error, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET sent = excluded.sent, applied = excluded.applied, nacked = excluded.nacked, nack_error = excluded.nack_error, updated_at = excluded.updated_at'),
    deleteRollout: db.prepare('DELETE FROM rollout WHERE host = ?'),
    rollout: db.prepare<[], { host: string; sent: string; applied: string; nacked: string; nack_error: Buffer | null; updated_at: number }>('SELECT host, sent, applied, nacked, nack_error, updated_at FROM rollout ORDER BY host'),
  };

  const decode = <K extends Kind>(kind: K, key: string, bytes: Uint8Array, revision: number): Stored<K> => {
    const value = fromBinary(KINDS[kind], bytes) as ResourceOf<K>;
    value.revision = BigInt(revision);
    return { kind, key, value, revision };
  };

  const snapshot = new Snapshot();
  snapshot.reset(q.all.all().map((r) => decode(r.kind as Kind, r.key, r.value, r.revision)), q.revision.get()?.value ?? 0);
  const watchers = new Set<(b: ChangeBatch) => void>();

  const commit = (overlay: Overlay): number => {
    const next = snapshot.revision + 1;
    const puts: Stored<Kind>[] = [];
    const deletes: { kind: Kind; key: string }[] = [];
    db.transaction(() => {
      for (const w of overlay.writes.values()) {
        if (w.value === undefined) {
          if (q.del.run(w.kind, w.key).changes === 0) continue;
          deletes.push({ kind: w.kind, key: w.key });
        } else {
          // The revision is the row's, never part of the stored bytes.
          const bytes = toBinary(KINDS[w.kind], { ...w.value, revision: 0n });
          q.put.run(w.kind, w.key, Buffer.from(bytes), next);
          puts.push(decode(w.kind, w.key, bytes, next));
        }
        q.change.run(next, w.kind, w.key, w.value === undefined ? 'delete' : 'put');
      }
      q.setRevision.run(next);
      if (next % 1000 === 0) q.trim.run(next - CHANGES_KEPT);
    }).immediate();
    snapshot.apply(next, puts, deletes);
    const batch: ChangeBatch = { revision: next, changes: overlay.changes(next), relist: false };
    for (const w of watchers) w(batch);
    return next;
  };

  return {
    get: (kind, key) => snapshot.get(kind, key),
    list: (kind) => snapshot.list(kind),
    hostOfAddress: (a) => snapshot.hostOfAddress(a),
    lowestFreeAddress: (pool, skip) => snapshot.lowestFreeAddress(pool, skip),
    revision: () => snapshot.revision,
    live: () => true,
    async transact<T>(fn: (tx: Tx) => T): Promise<{ result: T; revision: number }> {
      // One writer and a synchronous fn: nothing can commit between its reads and this commit.
      const overlay = new Overlay(snapshot);
      const result = fn(overlay);
      const revision = overlay.writes.size > 0 ? commit(overlay) : snapshot.revision;
      return { result, revision };
    },
    watch(fromRevision, on) {
      const oldest = q.oldest.get()?.r ?? snapshot.revision + 1;
      if (fromRevision < snapshot.revision) {
        if (fromRevision + 1 < oldest) {
          on({ revision: snapshot.revision, changes: [], relist: true });
        } else {
          const byRevision = new Map<number, Change[]>();
          for (const c of q.since.all(fromRevision)) byRevision.set(c.revision, [...(byRevision.get(c.revision) ?? []), c]);
          for (const [revision, changes] of byRevision) on({ revision, changes, relist: false });
        }
      }
      watchers.add(on);
      return () => { watchers.delete(on); };
    },
    async load() {
      // One controller: health and connections are in its memory only; the rollout survives restarts.
      return q.rollout.all().map((r) => ({
        kind: 'rollout' as const, hostId: r.host, value: encodeRollout({
          sentVersion: r.sent, appliedVersion: r.applied, nackedVersion: r.nacked, nackError: r.nack_error ?? undefined, updatedAt: new Date(r.updated_at),
        }),
      }));
    },
    async save(records: readonly StatusRecord[]) {
      db.transaction(() => {
        for (const rec of records) {
          if (rec.kind !== 'rollout') continue;
          if (!rec.value) {
            q.deleteRollout.run(rec.hostId);
            continue;
          }
          const r = decodeRollout(rec.value);
          q.putRollout.run(rec.hostId, r.sentVersion, r.appliedVersion, r.nackedVersion, r.nackError ? Buffer.from(r.nackError) : null, r.updatedAt.getTime());
        }
      })();
    },
    async close() {
      watchers.clear();
      db.close();
    },
  };
}
