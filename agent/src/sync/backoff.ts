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

/** gRPC status codes worth retrying the stream on (the others are bugs or refusals to report). */
export const RETRYABLE_CODES: ReadonlySet<number> = new Set([
  1, // CANCELLED
  4, // DEADLINE_EXCEEDED
  8, // RESOURCE_EXHAUSTED
  10, // ABORTED
  13, // INTERNAL
  14, // UNAVAILABLE
]);
