// kill -9 in the middle of a burst of writes: the database opens again and
// holds only whole transactions (real SQLite file, real SIGKILL).
import t from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../../controller/src/store/sqlite.js';
import { tempDir } from '../../fixtures/temp.js';

const WRITER = fileURLToPath(new URL('../../fixtures/store-writer.ts', import.meta.url));

void t.test('kill -9 during writes leaves only whole changes', async (t) => {
  const dir = await tempDir(t, 'hostnet-store');
  const path = join(dir, 'hostnet.db');
  for (let round = 1; round <= 3; round++) {
    const child = spawn(process.execPath, ['--import=tsx', WRITER, path], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => createInterface({ input: child.stdout }).once('line', () => resolve()));
    await new Promise((r) => setTimeout(r, 300 + round * 100));
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;

    const raw = new Database(path, { readonly: true });
    t.equal((raw.pragma('integrity_check', { simple: true })), 'ok', `round ${round}: integrity_check ok`);
    raw.close();
    const store = openSqliteStore(path);
    const objects = store.list('object');
    const counter = Number(store.get('tenant', 'counter')?.value.name ?? 0);
    t.ok(objects.length > 0, `round ${round}: writes happened (${objects.length} objects)`);
    t.equal(counter, objects.length, `round ${round}: the count written in the same transaction matches the objects present`);
    t.ok(objects.every((o) => o.value.prefixes.length === 50), `round ${round}: every object is whole`);
    t.equal(store.revision(), objects.length, `round ${round}: one revision per committed transaction`);
    let changes = 0;
    store.watch(0, (b) => { changes += b.changes.length; })();
    t.equal(changes, 2 * objects.length, `round ${round}: the change feed replays every committed change`);
    await store.close();
  }
});
