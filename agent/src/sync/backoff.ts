// Reconnect timing for the agent's Sync stream: exponential with full
// jitter, capped, so that thousands of agents losing one controller do not
// come back in lockstep. Pure: the random source is a parameter.
export interface BackoffOptions {
  readonly initialMs: number;
  readonly maxMs: number;
  readonly multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 250, maxMs: 30_000, multiplier: 2 };

/**
 * The delay before reconnect attempt `attempt` (0 for the first retry):
 * uniformly random in [0, min(max, initial * multiplier^attempt)].
 */
export function backoffMs(attempt: number, random: () => number = Math.random, o: BackoffOptions = DEFAULT_BACKOFF): number {
  const ceiling = Math.min(o.maxMs, o.initialMs * o.multiplier ** Math.max(0, attempt));
  return Math.floor(random() * ceiling);
}

/**
 * When to try the next controller: a stream that ends or fails moves to the
 * next address after a short jittered pause (the first backoff step), so an
 * agent whose replica died is on another one within a quarter second; only
 * when every address failed in a row does the exponential backoff grow. A
 * stream that lasted (stable) starts the backoff over.
 */
export class Reconnects {
  private attempt = 0;
  private failedInRow = 0;

  constructor(
    private readonly addresses: number,
    private readonly random: () => number = Math.random,
    private readonly o: BackoffOptions = DEFAULT_BACKOFF,
  ) {}

  /** A controller accepted the Hello: the next failure starts a new round of addresses. */
  accepted(): void {
    this.failedInRow = 0;
  }

  /** The stream lasted long enough to count as a success: the backoff starts over. */
  stable(): void {
    this.attempt = 0;
  }

  /** The pause before the next attempt (at the next address), after a stream ended or a connect failed. */
  next(): number {
    this.failedInRow++;
    if (this.failedInRow < this.addresses) return backoffMs(0, this.random, this.o);
    this.failedInRow = 0;
    return backoffMs(this.attempt++, this.random, this.o);
  }
}

/** gRPC status codes worth retrying the stream on (the others are bugs or refusals to report). */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  1, // CANCELLED
  4, // DEADLINE_EXCEEDED
  8, // RESOURCE_EXHAUSTED
  10, // ABORTED
  13, // INTERNAL
  14, // UNAVAILABLE
]);
