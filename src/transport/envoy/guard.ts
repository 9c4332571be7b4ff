import { errorVerdict, type Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import { after } from "../../runtime/deadline.js";

/** Default time a transport waits for a verdict: well inside Envoy's 200 ms ext_authz timeout. */
export const DEFAULT_CHECK_DEADLINE_MS = 150;

/**
 * Runs `produce` and calls `done` once with its verdict, or with a `kind: "error"` verdict when it throws, rejects,
 * returns something that is not a verdict, or takes longer than `deadlineMs`; never throws. A verdict returned
 * directly is passed on at once, with no promise and no deadline. `selfLimitedMs` is the time within which
 * `produce` promises to settle by itself (see Authorizer.deadlineMs): when it fits the deadline, no second timer is
 * armed for the same request.
 */
export function decideWithin(
  produce: () => Verdict | PromiseLike<Verdict>,
  deadlineMs: number,
  selfLimitedMs: number | undefined,
  done: (verdict: Verdict) => void,
): void {
  let produced: Verdict | PromiseLike<Verdict>;
  try {
    produced = produce();
  } catch (error) {
    done(errorVerdict(error));
    return;
  }
  if (!isThenable(produced)) {
    done(isVerdict(produced) ? produced : noVerdict);
    return;
  }
  if (selfLimitedMs !== undefined && selfLimitedMs <= deadlineMs) {
    produced.then(
      (verdict) => done(isVerdict(verdict) ? verdict : noVerdict),
      (error: unknown) => done(errorVerdict(error)),
    );
    return;
  }
  // A queued deadline instead of Promise.race over a per-call setTimeout: this runs per Check.
  let settled = false;
  const deadline = after(deadlineMs, () => {
    settled = true;
    done({ kind: "error", message: `no decision within ${deadlineMs} ms` });
  });
  produced.then(
    (verdict) => {
      if (settled) return;
      settled = true;
      deadline.cancel();
      done(isVerdict(verdict) ? verdict : noVerdict);
    },
    (error: unknown) => {
      if (settled) return;
      settled = true;
      deadline.cancel();
      done(errorVerdict(error));
    },
  );
}

/** decideWithin as a promise, for callers that await; it never rejects. */
export function verdictWithin(
  produce: () => Verdict | PromiseLike<Verdict>,
  deadlineMs: number,
  selfLimitedMs?: number,
): Promise<Verdict> {
  return new Promise((resolve) => decideWithin(produce, deadlineMs, selfLimitedMs, resolve));
}

/** The time left for a decision: the configured deadline, shortened to fit the caller's own deadline if sooner. */
export function budgetMs(
  deadlineMs: number,
  callerDeadline: number | Date | undefined,
  now = Date.now(),
): number {
  const at = callerDeadline instanceof Date ? callerDeadline.getTime() : callerDeadline;
  if (at === undefined || !Number.isFinite(at)) return deadlineMs;
  // Answer a little before the caller gives up, so it gets our decision rather than its own timeout.
  const remaining = at - now - 20;
  return Math.max(1, Math.min(deadlineMs, remaining));
}

// Shared by every such answer, so frozen: nothing downstream may change it for the next caller.
const noVerdict: Verdict = Object.freeze({ kind: "error", message: "the authorizer returned no verdict" });

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === "function";
}

function isVerdict(value: unknown): value is Verdict {
  const kind = (value as { kind?: unknown } | null | undefined)?.kind;
  return kind === "allow" || kind === "deny" || kind === "error";
}

/** Fields that tie a failure's log line to its request (request id, trace id); built only if the line is written. */
export type FailureFields = () => Record<string, unknown> | undefined;

// Often enough to follow an outage as it unfolds, rarely enough that thousands of failures a second stay a trickle.
const FAILURE_LOG_INTERVAL_MS = 1000;

/**
 * Returns a logger of backend failures that writes the first one and then at most one a second, each line counting
 * the failures since the previous one, so that an outage at thousands of checks per second does not flood the log
 * and a rare failure is not lost. Only failure messages are logged, never requests.
 */
export function createFailureLog(
  logger: Logger | undefined,
  event: string,
): (message: string, fields?: FailureFields) => void {
  let failures = 0;
  let unlogged = 0;
  let loggedAt = Number.NEGATIVE_INFINITY;
  return (message, fields) => {
    failures++;
    unlogged++;
    if (!logger) return;
    const now = performance.now();
    if (now - loggedAt < FAILURE_LOG_INTERVAL_MS) return;
    loggedAt = now;
    logger.warn(event, { error: message, failures, sinceLastLine: unlogged, ...fields?.() });
    unlogged = 0;
  };
}
