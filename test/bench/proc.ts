// What the benchmarks read of a process from /proc: its resident memory and its CPU time.
import { readFile } from 'node:fs/promises';

/** A process's resident set size in KB (NaN when it is gone). */
export async function rssKb(pid: number | undefined): Promise<number> {
  const status = await readFile(`/proc/${pid ?? 0}/status`, 'utf8').catch(() => '');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN);
}

/**
 * CPU seconds (user + system) a process has used so far (NaN when it is gone); `mainThread`: its
 * main thread's alone (node's event loop, without V8's GC helpers and libuv's pool).
 */
export async function cpuSeconds(pid: number | undefined, mainThread = false): Promise<number> {
  const stat = await readFile(mainThread ? `/proc/${pid ?? 0}/task/${pid ?? 0}/stat` : `/proc/${pid ?? 0}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}
