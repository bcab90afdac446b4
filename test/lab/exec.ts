// Running commands in lab namespaces (on top of common/run.ts) and polling.
import { fileURLToPath } from 'node:url';
import { run as runProcess, type RunOptions as BaseRunOptions, type RunResult } from '../../common/run.js';

export { CommandError, type RunResult } from '../../common/run.js';

export interface RunOptions extends BaseRunOptions {
  /** Network namespace to run in (via `ip netns exec`). */
  readonly netns?: string;
}

/** argv prefixed with `ip netns exec NS` when a namespace is given. */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : [...argv];
}

/** Runs argv (in options.netns when given) to completion; see common/run.ts. */
export function run(argv: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return runProcess(inNetns(options.netns, argv), options);
}

/** Polls `check` every `intervalMs` until it returns a value other than undefined, or throws after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  options: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + options.timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const why = lastError instanceof Error ? `: ${lastError.message}` : '';
      throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${why}`);
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 100));
  }
}

/**
 * A file of the source tree relative to module `base` (import.meta.url),
 * also when that module runs compiled from dist/ (data files and plain JS
 * helpers are not copied there).
 */
export function sourcePath(rel: string, base: string): string {
  return fileURLToPath(new URL(rel, base)).replace(/\/dist\/test\//, '/test/');
}
