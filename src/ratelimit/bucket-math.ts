import type { Bucket, LimitRequest, LimitResult } from "../domain/ports.js";
import type { Limit } from "../domain/types.js";
import type { LimitStatus } from "../domain/verdict.js";

/**
 * Slack for floating-point refill arithmetic, so a bucket that should hold exactly N tokens is not
 * seen as 2.9999999 and refused; the Lua script uses the same value so both limiters agree.
 */
export const TOKEN_EPSILON = 1e-9;

/** How long an untouched full bucket is kept past the moment it refilled, in the store and in memory. */
export const EXPIRY_MARGIN_MS = 1000;

// Callers reuse frozen bucket lists (one per cached key entry), so each list is checked once, not on every Check.
const validLists = new WeakSet<readonly Bucket[]>();

/** Rejects requests no bucket could sensibly answer; a config bug must surface, not silently admit. */
export function validateRequest(request: LimitRequest): void {
  if (typeof request.tag !== "string" || request.tag === "") {
    // An empty tag would become "{}" in Redis, which hashes the whole key and splits buckets across slots.
    throw new RangeError("rate limit request needs a non-empty tag");
  }
  if (!Number.isFinite(request.cost) || request.cost < 0) {
    throw new RangeError(`rate limit cost must be a finite number >= 0, got ${request.cost}`);
  }
  if (validLists.has(request.buckets)) return;
  const seen = new Set<string>();
  for (const { id, limit } of request.buckets) {
    if (id === "" || seen.has(id))
      throw new RangeError(`bucket ids must be unique and non-empty, got "${id}"`);
    seen.add(id);
    if (!(Number.isFinite(limit.capacity) && limit.capacity > 0)) {
      throw new RangeError(`limit "${limit.name}" needs a capacity > 0, got ${limit.capacity}`);
    }
    if (!(Number.isFinite(limit.periodSeconds) && limit.periodSeconds > 0)) {
      throw new RangeError(`limit "${limit.name}" needs periodSeconds > 0, got ${limit.periodSeconds}`);
    }
  }
  if (isFrozenBucketList(request.buckets)) validLists.add(request.buckets);
}

/**
 * Whether neither the list nor any of its buckets and limits can change: only then may a limiter keep what it
 * derives from the list (its validation, its Redis keys and arguments) for the next request with the same list.
 */
export function isFrozenBucketList(buckets: readonly Bucket[]): boolean {
  return Object.isFrozen(buckets) && buckets.every((b) => Object.isFrozen(b) && Object.isFrozen(b.limit));
}

/** Tokens a bucket holds at `nowMs`, clamped to the limit's current capacity; a missing bucket is full. */
export function refilledTokens(
  stored: { tokens: number; updatedAtMs: number } | undefined,
  limit: Limit,
  nowMs: number,
): number {
  if (!stored) return limit.capacity;
  // A clock that stepped backwards must not drain the bucket.
  const elapsedMs = Math.max(0, nowMs - stored.updatedAtMs);
  const rate = limit.capacity / (limit.periodSeconds * 1000);
  return Math.min(limit.capacity, Math.min(stored.tokens, limit.capacity) + elapsedMs * rate);
}

/** Whether a bucket holding `tokens` can pay `cost`. */
export function fits(tokens: number, cost: number): boolean {
  return tokens + TOKEN_EPSILON >= cost;
}

/** Tokens left after paying `cost`; never negative despite the epsilon in `fits`. */
export function charged(tokens: number, cost: number): number {
  return Math.max(0, tokens - cost);
}

/** Milliseconds until a bucket holding `tokens` is full again. */
export function msUntilFull(tokens: number, limit: Limit): number {
  const missing = Math.max(0, limit.capacity - tokens);
  return (missing / limit.capacity) * limit.periodSeconds * 1000;
}

/**
 * Whole seconds until a bucket holding `tokens` can pay `cost`, at least 1. A cost above the capacity can
 * never be paid, so the answer is the full period: the soonest moment anything about the bucket changes.
 */
export function retryAfterSeconds(tokens: number, cost: number, limit: Limit): number {
  if (cost > limit.capacity) return Math.ceil(limit.periodSeconds);
  const seconds = ((cost - tokens) / limit.capacity) * limit.periodSeconds;
  // The epsilon keeps 2.0000000001 s (float noise) from being reported as 3 s.
  return Math.max(1, Math.ceil(seconds - 1e-6));
}

/**
 * Builds the result both limiters return from each bucket's tokens after the decision (after the charge when
 * allowed, untouched when denied), so Redis and memory report identical headers.
 */
export function buildResult(
  request: LimitRequest,
  allowed: boolean,
  tokensAfter: readonly number[],
  nowMs: number,
): LimitResult {
  // Plain loops: this runs on every rate-limited Check.
  const { buckets, cost } = request;
  let worstRetry = 0;
  if (!allowed) {
    for (let i = 0; i < buckets.length; i++) {
      const tokens = tokensAfter[i] ?? 0;
      if (!fits(tokens, cost))
        worstRetry = Math.max(worstRetry, retryAfterSeconds(tokens, cost, buckets[i]!.limit));
    }
  }
  const statuses: LimitStatus[] = [];
  for (let i = 0; i < buckets.length; i++) {
    const b = buckets[i]!;
    const tokens = tokensAfter[i] ?? 0;
    statuses.push({
      name: b.limit.name,
      appliesTo: b.appliesTo,
      limit: b.limit.capacity,
      remaining: Math.min(b.limit.capacity, Math.floor(tokens + TOKEN_EPSILON)),
      resetAt: Math.ceil((nowMs + msUntilFull(tokens, b.limit)) / 1000),
      retryAfterSeconds: !allowed && !fits(tokens, cost) ? worstRetry : 0,
    });
  }
  return { allowed, statuses };
}
