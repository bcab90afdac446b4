// The last applied state on disk, so that a host rebooting while the
// controller is away comes up with its rules: written atomically (write to a
// temporary file, fsync it, rename over the old one, fsync the directory) so
// a crash leaves either the old state or the new one, never half of one.
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fromBinary, toBinary } from '@bufbuild/protobuf';
import { type Snapshot, SnapshotSchema } from '../../../proto/gen/hostnet/v1/agent_pb.js';

export const STATE_FILE = 'applied.pb';

/** Writes `data` to `path` (created with `mode`) and fsyncs it before resolving. */
export async function writeSynced(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const fh = await open(path, 'w', mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Writes `snapshot` as the applied state under `dir`. Idempotent. Throws the fs error. */
export async function saveState(dir: string, snapshot: Snapshot): Promise<void> {
  const target = join(dir, STATE_FILE);
  const tmp = `${target}.tmp`;
  await writeSynced(tmp, toBinary(SnapshotSchema, snapshot), 0o600);
  await rename(tmp, target);
  const d = await open(dirname(target), 'r');
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

/**
 * The applied state under `dir`, or undefined when there is none. A file
 * that does not decode is reported (not silently ignored) by the caller
 * through the thrown error.
 */
export async function loadState(dir: string): Promise<Snapshot | undefined> {
  let bytes: Buffer;
  try {
    bytes = await readFile(join(dir, STATE_FILE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return fromBinary(SnapshotSchema, bytes);
}

/** Removes a leftover temporary file of an interrupted save. */
export async function cleanupState(dir: string): Promise<void> {
  await unlink(join(dir, `${STATE_FILE}.tmp`)).catch(() => undefined);
}
