// The one seam for running a process: argv in, exit code and output out.
// Daemons get a Runner through their constructors; tests pass a fake that
// checks argv and stdin.
import { spawn } from 'node:child_process';

export interface RunOptions {
  readonly stdin?: string;
  /** Kill the command after this long (default 30 s). */
  readonly timeoutMs?: number;
  /** Resolve with the result even when the exit code is not 0. */
  readonly allowFail?: boolean;
}

export interface RunResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The process id, so callers can recognise their own effects (e.g. nft's generation owner). */
  readonly pid?: number;
}

export type Runner = (argv: readonly string[], options?: RunOptions) => Promise<RunResult>;

/** How long output is still read after the command exited, for a daemon it left holding the pipes. */
const LINGER_MS = 500;

export class CommandError extends Error {
  override readonly name = 'CommandError';
  constructor(readonly argv: readonly string[], readonly result: RunResult) {
    super(`${argv.join(' ')} exited ${result.code}: ${result.stderr.trim() || result.stdout.trim()}`);
  }
}

/**
 * Runs argv to completion. Throws CommandError on a non-zero exit unless
 * allowFail. A command that leaves a daemon behind (FRR's start script, say)
 * is done a moment after it exits, even though the daemon still holds its
 * output pipes; what the daemon writes after that is not captured.
 */
export const run: Runner = (argv, options = {}) => {
  const [cmd, ...args] = argv;
  if (!cmd) return Promise.reject(new TypeError('empty argv'));
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    let linger: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(linger);
      const result: RunResult = {
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString() + (signal ? `\n(killed by ${signal})` : ''),
        ...(child.pid !== undefined ? { pid: child.pid } : {}),
      };
      if (result.code !== 0 && !options.allowFail) reject(new CommandError(argv, result));
      else resolve(result);
    };
    child.on('error', (e) => {
      done = true;
      clearTimeout(timer);
      clearTimeout(linger);
      reject(e);
    });
    child.on('close', finish);
    child.on('exit', (code, signal) => {
      // 'close' waits for every holder of the pipes; a daemon the command started is one.
      linger = setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish(code, signal);
      }, LINGER_MS);
    });
    // A command that exits without reading its input must not crash us.
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.stdin ?? '');
  });
};
