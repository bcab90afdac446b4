// Logging for both daemons: pino, JSON lines on stdout (journald adds the
// timestamp and unit; we keep pino's for files and tests).
import { Writable } from 'node:stream';
import { pino, type Logger, type LevelWithSilent, type DestinationStream } from 'pino';

export type { Logger };

export const LOG_LEVELS: readonly LevelWithSilent[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface LogOptions {
  /** The daemon's name, e.g. "hostnet-agent"; every line carries it. */
  readonly name: string;
  readonly level: LevelWithSilent;
  /** Where lines go; stdout when omitted (tests pass a buffer). */
  readonly destination?: DestinationStream;
}

/** Creates the root logger. Errors are serialised with message and stack. */
export function createLogger(options: LogOptions): Logger {
  return pino(
    {
      name: options.name,
      level: options.level,
      base: { pid: process.pid },
      serializers: { err: pino.stdSerializers.err },
    },
    options.destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that writes nothing (tests, benchmarks, one-shot tools). */
export function silentLogger(): Logger {
  return createLogger({ name: 'silent', level: 'silent', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
}
