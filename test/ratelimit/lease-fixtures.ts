import type { Bucket, LimitRequest } from "../../src/domain/ports.js";
import type { LeaseBackend } from "../../src/ratelimit/lease-limiter.js";
import { createMemoryLimiter } from "../../src/ratelimit/memory-limiter.js";
import { bucket } from "./limiter-behaviour.js";

/** The lease time every leasing test uses. */
export const LEASE_MS = 100;

/** A period whose refill no test sees. */
export const SLOW_PERIOD = 1e9;

/** A clock in unix ms that moves only when told. */
export function fakeClock() {
  let nowMs = 1_700_000_000_000;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

/** `buckets` frozen with their limits, as the key cache hands a bucket list to the limiter. */
export function freezeList(...buckets: Bucket[]): readonly Bucket[] {
  for (const b of buckets) Object.freeze(Object.freeze(b).limit);
  return Object.freeze(buckets);
}

/** A frozen one-bucket list. */
export function frozenList(capacity: number, periodSeconds: number): readonly Bucket[] {
  return freezeList(bucket("k:minute", capacity, periodSeconds));
}

/** The memory limiter, counting the calls and tokens that reach it. */
export function countingBackend(now: () => number) {
  const inner = createMemoryLimiter({ now });
  const seen = { calls: 0, given: 0, fail: false };
  const backend: LeaseBackend = {
    consume(request) {
      seen.calls++;
      if (seen.fail) return Promise.reject(new Error("backend down"));
      return inner.consume(request);
    },
    giveBack(request, amount) {
      seen.given += amount;
      inner.giveBack(request, amount);
    },
    close: () => inner.close(),
  };
  return {
    backend,
    seen,
    remaining: async (request: LimitRequest) =>
      (await inner.consume({ ...request, cost: 0 })).statuses[0]!.remaining,
  };
}
