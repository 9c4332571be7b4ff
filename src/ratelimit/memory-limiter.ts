import type { LimitRequest, LimitResult } from "../domain/ports.js";
import type { Limit } from "../domain/types.js";
import {
  buildResult,
  charged,
  EXPIRY_MARGIN_MS,
  fits,
  msUntilFull,
  refilledTokens,
  validateRequest,
} from "./bucket-math.js";
import type { LeaseBackend } from "./lease-limiter.js";

/** Options for the single-process limiter. */
export interface MemoryLimiterOptions {
  /** Clock in unix milliseconds; tests inject a fake one. */
  now?: () => number;
  /** How often, at most, a consume call also drops buckets that have refilled (default 10 s). */
  sweepIntervalMs?: number;
}

/** The in-memory limiter, with its bucket count exposed so tests can see idle buckets go. */
export interface MemoryRateLimiter extends LeaseBackend {
  readonly size: number;
}

interface StoredBucket {
  tokens: number;
  updatedAtMs: number;
  /** When the bucket is full again plus the margin: dropping it then is indistinguishable from keeping it. */
  expiresAtMs: number;
}

/** Where a bucket is kept: the same `{tag}:<id>` shape as its Redis key, without the prefix. */
function bucketKey(tag: string, id: string): string {
  return `{${tag}}:${id}`;
}

/** Creates a token-bucket limiter for one process, with the same semantics as the Redis limiter. */
export function createMemoryLimiter(options: MemoryLimiterOptions = {}): MemoryRateLimiter {
  const now = options.now ?? Date.now;
  const sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
  const buckets = new Map<string, StoredBucket>();
  let lastSweepMs = now();

  // Sweeping lazily from consume needs no timer (nothing to unref or clear) and works with a fake clock;
  // an idle process keeps at most what it held when traffic stopped, so memory stays bounded.
  function sweep(nowMs: number): void {
    if (nowMs - lastSweepMs < sweepIntervalMs) return;
    lastSweepMs = nowMs;
    for (const [key, bucket] of buckets) {
      if (bucket.expiresAtMs <= nowMs) buckets.delete(key);
    }
  }

  function store(key: string, left: number, limit: Limit, nowMs: number): void {
    buckets.set(key, {
      tokens: left,
      updatedAtMs: nowMs,
      expiresAtMs: nowMs + Math.ceil(msUntilFull(left, limit)) + EXPIRY_MARGIN_MS,
    });
  }

  function consumeNow(request: LimitRequest): LimitResult {
    validateRequest(request);
    const nowMs = now();
    sweep(nowMs);
    const keys = request.buckets.map((b) => bucketKey(request.tag, b.id));
    const tokens = request.buckets.map((b, i) => {
      const stored = buckets.get(keys[i] as string);
      // An expired entry the sweep has not reached yet is a full bucket, exactly as a Redis key past its TTL.
      return refilledTokens(stored && stored.expiresAtMs > nowMs ? stored : undefined, b.limit, nowMs);
    });
    const allowed = tokens.every((t) => fits(t, request.cost));
    if (!allowed) return buildResult(request, false, tokens, nowMs);
    const after = tokens.map((t) => charged(t, request.cost));
    request.buckets.forEach((b, i) => {
      store(keys[i] as string, after[i] as number, b.limit, nowMs);
    });
    return buildResult(request, true, after, nowMs);
  }

  return {
    get size() {
      return buckets.size;
    },
    async consume(request) {
      return consumeNow(request);
    },
    giveBack(request, amount) {
      if (!(amount > 0)) return;
      const nowMs = now();
      for (const b of request.buckets) {
        const key = bucketKey(request.tag, b.id);
        const stored = buckets.get(key);
        // A missing or expired bucket is full: there is nothing to give back to.
        if (!stored || stored.expiresAtMs <= nowMs) continue;
        store(
          key,
          Math.min(b.limit.capacity, refilledTokens(stored, b.limit, nowMs) + amount),
          b.limit,
          nowMs,
        );
      }
    },
    async close() {
      buckets.clear();
    },
  };
}
