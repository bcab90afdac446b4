// The embedded store engine: SQLite through better-sqlite3, WAL, every
// transaction atomic and durable (synchronous=FULL), schema migrations by
// PRAGMA user_version. A kill -9 at any point leaves a database that opens
// and holds only whole transactions.
import Database from 'better-sqlite3';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Change, type Kind, KINDS, type ResourceOf, type Store, type Stored, type Tx } from './store.js';

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

export class StoreError extends Error {
  override readonly name = 'StoreError';
}

interface Row {
  kind: string;
  key: string;
  value: Buffer;
  revision: number;
}

/** Opens (creating and migrating as needed) the database at `path` (":memory:" for tests). */
export function openSqliteStore(path: string): Store {
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
    get: db.prepare<[string, string], Row>('SELECT kind, key, value, revision FROM resources WHERE kind = ? AND key = ?'),
    list: db.prepare<[string], Row>('SELECT kind, key, value, revision FROM resources WHERE kind = ? ORDER BY key'),
    put: db.prepare('INSERT INTO resources (kind, key, value, revision) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value, revision = excluded.revision'),
    del: db.prepare('DELETE FROM resources WHERE kind = ? AND key = ?'),
    change: db.prepare('INSERT INTO changes (revision, kind, key, op) VALUES (?, ?, ?, ?)'),
    revision: db.prepare<[], { value: number }>("SELECT value FROM meta WHERE name = 'revision'"),
    setRevision: db.prepare("UPDATE meta SET value = ? WHERE name = 'revision'"),
    since: db.prepare<[number], Change>('SELECT revision, kind, key, op FROM changes WHERE revision > ? ORDER BY revision, rowid'),
    putRollout: db.prepare('INSERT INTO rollout (host, sent, applied, nacked, nack_error, updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host) DO UPDATE SET sent = excluded.sent, applied = excluded.applied, nacked = excluded.nacked, nack_error = excluded.nack_error, updated_at = excluded.updated_at'),
    deleteRollout: db.prepare('DELETE FROM rollout WHERE host = ?'),
    rollout: db.prepare<[], { host: string; sent: string; applied: string; nacked: string; nack_error: Buffer | null; updated_at: number }>('SELECT host, sent, applied, nacked, nack_error, updated_at FROM rollout ORDER BY host'),
  };

  const decode = <K extends Kind>(row: Row): Stored<K> => {
    const value = fromBinary(KINDS[row.kind as K], row.value) as ResourceOf<K>;
    value.revision = BigInt(row.revision);
    return { kind: row.kind as K, key: row.key, value, revision: row.revision };
  };

  const reader = {
    get<K extends Kind>(kind: K, key: string): Stored<K> | undefined {
      const row = q.get.get(kind, key);
      return row ? decode<K>(row) : undefined;
    },
    list<K extends Kind>(kind: K): Stored<K>[] {
      return q.list.all(kind).map((r) => decode<K>(r));
    },
  };

  const revision = (): number => q.revision.get()?.value ?? 0;

  return {
    ...reader,
    revision,
    transact<T>(fn: (tx: Tx) => T): { result: T; revision: number } {
      const run = db.transaction(() => {
        const next = revision() + 1;
        let writes = 0;
        const tx: Tx = {
          ...reader,
          put(kind, key, value) {
            // The revision is the row's, never part of the stored bytes.
            q.put.run(kind, key, Buffer.from(toBinary(KINDS[kind], { ...value, revision: 0n })), next);
            q.change.run(next, kind, key, 'put');
            writes++;
          },
          delete(kind, key) {
            const gone = q.del.run(kind, key).changes > 0;
            if (gone) {
              q.change.run(next, kind, key, 'delete');
              writes++;
            }
            return gone;
          },
        };
        const result = fn(tx);
        if (writes > 0) q.setRevision.run(next);
        return { result, revision: writes > 0 ? next : next - 1 };
      });
      // IMMEDIATE: take the write lock at the start, so a concurrent writer waits instead of failing mid-way.
      return run.immediate();
    },
    changesSince(rev: number): Change[] {
      return q.since.all(rev);
    },
    saveRollout(rows, deleted = []) {
      db.transaction(() => {
        for (const host of deleted) q.deleteRollout.run(host);
        for (const r of rows) {
          q.putRollout.run(r.hostId, r.sentVersion, r.appliedVersion, r.nackedVersion, r.nackError ? Buffer.from(r.nackError) : null, r.updatedAt.getTime());
        }
      })();
    },
    loadRollout() {
      return q.rollout.all().map((r) => ({
        hostId: r.host, sentVersion: r.sent, appliedVersion: r.applied, nackedVersion: r.nacked,
        nackError: r.nack_error ?? undefined, updatedAt: new Date(r.updated_at),
      }));
    },
    close() {
      db.close();
    },
  };
}
