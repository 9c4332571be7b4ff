import { memoPerEntry } from "./entry-memo.js";
import type { KeyEntry } from "./key-entry.js";
import type { Bucket, LimitResult, RateLimiter } from "./ports.js";
import type { KeySpace } from "./types.js";
import { denialFingerprint, type LimitStatus, type Verdict } from "./verdict.js";

// Key spaces, like entries, are replaced rather than changed, so buckets are built once per pair rather than per
// Check (two template strings and objects per bucket per request otherwise). Frozen through and through, so
// limiters may keep what they derive from the list (keys, validation) per list.
const cachedBuckets = memoPerEntry((entry, space: KeySpace): readonly Bucket[] =>
  Object.freeze(
    bucketsFor(entry, space).map((b) => Object.freeze({ ...b, limit: Object.freeze({ ...b.limit }) })),
  ),
);

/** The buckets a request of `entry` draws from: per-key limits, then limits shared by the workspace. */
export function bucketsFor(entry: KeyEntry, space: KeySpace): Bucket[] {
  const { key, workspace } = entry;
  // The most specific setting wins: key, then workspace, then key-space default.
  const keyLimits = key.limits ?? workspace.keyLimits ?? space.defaultKeyLimits;
  const workspaceLimits = workspace.workspaceLimits ?? space.defaultWorkspaceLimits;
  return [
    ...keyLimits.map((limit): Bucket => ({ id: `k:${key.id}:${limit.name}`, limit, appliesTo: "key" })),
    ...workspaceLimits.map(
      (limit): Bucket => ({ id: `w:${space.id}:${limit.name}`, limit, appliesTo: "workspace" }),
    ),
  ];
}

// Every 429 carries the same reason and message, so its fingerprint is computed once.
const RATE_LIMITED_MESSAGE = "rate limit exceeded";
const RATE_LIMITED_FINGERPRINT = denialFingerprint({ reason: "rate_limited", message: RATE_LIMITED_MESSAGE });

/** The buckets' statuses once charged, or the denial when one is empty or the limiter fails closed. */
export type LimitOutcome = { kind: "ok"; limits: LimitStatus[] } | Extract<Verdict, { kind: "deny" }>;

/**
 * Charges the request's buckets; a limiter failure follows the configured policy and is never a 429. Returns
 * directly, without a promise, when there is nothing to charge.
 */
export function applyLimits(
  o: {
    limiter: RateLimiter | undefined;
    rateLimitFailure: "open" | "closed";
    onLimiterFailure?: (error: unknown) => void;
  },
  entry: KeyEntry,
  space: KeySpace,
  cost: number,
  warnings: string[],
): LimitOutcome | Promise<LimitOutcome> {
  const buckets = cachedBuckets(entry, space);
  if (buckets.length === 0 || !o.limiter) return { kind: "ok", limits: [] };
  let consuming: Promise<LimitResult>;
  try {
    consuming = o.limiter.consume({ tag: entry.workspace.id, buckets, cost });
  } catch (error) {
    return limiterFailed(o, error, warnings);
  }
  return consuming.then(
    (result): LimitOutcome =>
      result.allowed
        ? { kind: "ok", limits: result.statuses }
        : {
            kind: "deny",
            reason: "rate_limited",
            message: RATE_LIMITED_MESSAGE,
            limits: result.statuses,
            fingerprint: RATE_LIMITED_FINGERPRINT,
          },
    (error: unknown) => limiterFailed(o, error, warnings),
  );
}

function limiterFailed(
  o: { rateLimitFailure: "open" | "closed"; onLimiterFailure?: (error: unknown) => void },
  error: unknown,
  warnings: string[],
): LimitOutcome {
  o.onLimiterFailure?.(error);
  if (o.rateLimitFailure === "closed") {
    return { kind: "deny", reason: "unavailable", message: "rate limiting is unavailable", limits: [] };
  }
  warnings.push("rate limiting unavailable; request not counted");
  return { kind: "ok", limits: [] };
}
