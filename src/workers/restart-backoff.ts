/** How the primary paces the restarts of a worker that keeps exiting. */
export interface RestartPolicy {
  /** Delay before the first restart after a crash. */
  baseMs: number;
  /** The longest delay, reached by doubling. */
  maxMs: number;
  /** A worker that served at least this long before it exited starts the count again. */
  stableMs: number;
}

/** Doubling from half a second to half a minute; a minute of service forgives earlier crashes. */
export const DEFAULT_RESTART_POLICY: RestartPolicy = { baseMs: 500, maxMs: 30_000, stableMs: 60_000 };

/**
 * The crash count after an exit: a worker that never listened, or served only briefly, adds to the previous count;
 * one that served for `stableMs` counts as a first crash.
 */
export function nextCrashCount(
  previous: number,
  servedMs: number | undefined,
  policy: RestartPolicy = DEFAULT_RESTART_POLICY,
): number {
  return servedMs !== undefined && servedMs >= policy.stableMs ? 1 : previous + 1;
}

/** The delay before restarting after the `crashes`-th consecutive crash (1 for the first). */
export function restartDelayMs(crashes: number, policy: RestartPolicy = DEFAULT_RESTART_POLICY): number {
  const exponent = Math.max(0, Math.min(crashes - 1, 30));
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}
