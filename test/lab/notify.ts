// A stand-in for systemd's NOTIFY_SOCKET: what a Type=notify service sends
// (READY=1, STATUS=..., WATCHDOG=1, STOPPING=1), collected with timestamps.
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sourcePath, waitFor } from './exec.js';
import type { Lab, LabProcess } from './lab.js';

const LISTENER = sourcePath('./notify-listener.py', import.meta.url);

export interface NotifyMessage {
  readonly t: number;
  readonly fields: readonly string[];
}

export interface NotifySocket {
  readonly path: string;
  readonly messages: NotifyMessage[];
  /** Messages carrying `field` (e.g. "READY=1", or a prefix like "STATUS="). */
  having(field: string): NotifyMessage[];
  readonly process: LabProcess;
}

/** Binds a notification socket in the lab directory; resolves once it listens. */
export async function notifySocket(lab: Lab, name: string): Promise<NotifySocket> {
  const path = join(lab.dir, `${name}.notify`);
  const proc = lab.spawnProcess(`notify-${name}`, ['/usr/bin/python3', LISTENER, path]);
  const messages: NotifyMessage[] = [];
  let ready = false;
  const stdout = proc.child.stdout;
  if (!stdout) throw new Error('notify listener has no stdout');
  createInterface({ input: stdout }).on('line', (line) => {
    const m = JSON.parse(line) as NotifyMessage & { ready?: boolean };
    if (m.ready) ready = true;
    else messages.push(m);
  });
  await waitFor('the notify socket', async () => {
    if (proc.child.exitCode !== null) throw new Error('notify listener exited');
    return ready ? true : undefined;
  }, { timeoutMs: 10_000, intervalMs: 20 });
  return {
    path, messages, process: proc,
    having: (field) => messages.filter((m) => m.fields.some((f) => (field.endsWith('=') ? f.startsWith(field) : f === field))),
  };
}
