// The agent's reconnect timing and its on-disk applied state.
import t from 'tap';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { create } from '@bufbuild/protobuf';
import { DEFAULT_BACKOFF, RETRYABLE_CODES, Reconnects, backoffMs } from '../../../agent/src/sync/backoff.js';
import { STATE_FILE, cleanupState, loadState, saveState } from '../../../agent/src/sync/state-file.js';
import { SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';
import { tempDir } from '../../fixtures/temp.js';

void t.test('backoff: exponential ceiling, full jitter, capped', async (t) => {
  t.equal(backoffMs(0, () => 0.999999), 249);
  t.equal(backoffMs(3, () => 0.5), 1000, 'half of 250 * 2^3');
  t.equal(backoffMs(30, () => 0.999999), DEFAULT_BACKOFF.maxMs - 1, 'capped');
  t.equal(backoffMs(5, () => 0), 0, 'full jitter reaches zero');
  const spread = new Set(Array.from({ length: 50 }, () => backoffMs(6)));
  t.ok(spread.size > 10, 'agents do not retry in lockstep');
  t.ok(RETRYABLE_CODES.has(14) && !RETRYABLE_CODES.has(7), 'UNAVAILABLE retried, PERMISSION_DENIED not');
});

void t.test('reconnects: the next controller at once, the backoff grows only when all failed in a row', async (t) => {
  const r = new Reconnects(2, () => 0.999999);
  t.equal(r.next(), 249, 'a stream ended: the other controller within the first step');
  t.equal(r.next(), 249, 'both failed once: the first backoff step');
  t.equal(r.next(), 249, 'the other again, at once');
  t.equal(r.next(), 499, 'both failed twice: the step doubles');
  r.next();
  t.equal(r.next(), 999);
  r.accepted();
  t.equal(r.next(), 249, 'after a controller accepted: the next one at once');
  t.equal(r.next(), 1999, 'but a flapping pair keeps growing');
  r.stable();
  r.next();
  t.equal(r.next(), 249, 'a stream that lasted starts the backoff over');
  const one = new Reconnects(1, () => 0.999999);
  t.same([one.next(), one.next(), one.next()], [249, 499, 999], 'one controller: plain exponential backoff');
});

void t.test('state file: absent, saved, replaced, corrupt', async (t) => {
  const dir = await tempDir(t, 'hostnet-state');
  t.equal(await loadState(dir), undefined, 'no state yet');
  const a = create(SnapshotSchema, { firewall: { version: 'fw1' }, routing: { version: 'rt1' } });
  await saveState(dir, a);
  t.equal((await loadState(dir))?.firewall?.version, 'fw1');
  await saveState(dir, create(SnapshotSchema, { firewall: { version: 'fw2' }, routing: { version: 'rt2' } }));
  t.equal((await loadState(dir))?.firewall?.version, 'fw2', 'replaced whole');
  t.same((await readdir(dir)).sort(), [STATE_FILE], 'no temporary file left');
  await writeFile(join(dir, `${STATE_FILE}.tmp`), 'half');
  await cleanupState(dir);
  t.same(await readdir(dir), [STATE_FILE], 'an interrupted save is cleaned up');
  await writeFile(join(dir, STATE_FILE), Buffer.from([0xff, 0xff, 0xff]));
  await t.rejects(loadState(dir), 'a corrupt state file is an error, not an empty state');
});
