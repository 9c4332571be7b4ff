import { randomUUID } from "node:crypto";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { Bucket, LimitRequest, RateLimiter } from "../../src/domain/ports.js";
import type { Limit } from "../../src/domain/types.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A bucket whose refill is negligible during a test unless a short period is given. */
export function bucket(
  id: string,
  capacity: number,
  periodSeconds = 3600,
  appliesTo: Bucket["appliesTo"] = "key",
) {
  const limit: Limit = { name: id, capacity, periodSeconds };
  return { id, limit, appliesTo } satisfies Bucket;
}

/** A tag no other test (or other run against a shared Redis) uses. */
export function freshTag(): string {
  return `t-${randomUUID()}`;
}

/**
 * Runs the behaviour every RateLimiter must share against one implementation; `factory` makes a fresh limiter
 * per test, which is closed afterwards. Timing-based tests use periods of a few seconds and generous bounds.
 */
export function describeLimiterBehaviour(
  name: string,
  factory: () => RateLimiter | Promise<RateLimiter>,
): void {
  describe(`${name} (shared limiter behaviour)`, () => {
    let limiter: RateLimiter;
    let tag: string;
    const consume = (buckets: Bucket[], cost = 1, onTag = tag) =>
      limiter.consume({ tag: onTag, buckets, cost } satisfies LimitRequest);

    beforeEach(async () => {
      limiter = await factory();
      tag = freshTag();
    });
    afterEach(async () => {
      await limiter.close();
    });

    it("admits a fresh bucket's requests up to its capacity, then denies", async () => {
      const b = bucket("minute", 3);
      const remaining = [];
      for (let i = 0; i < 3; i++) {
        const result = await consume([b]);
        expect(result.allowed).toBe(true);
        remaining.push(result.statuses[0]?.remaining);
      }
      expect(remaining).toEqual([2, 1, 0]);
      const denied = await consume([b]);
      expect(denied.allowed).toBe(false);
      expect(denied.statuses[0]).toMatchObject({ name: "minute", appliesTo: "key", limit: 3, remaining: 0 });
      expect(denied.statuses[0]?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
    });

    it("charges no bucket when any bucket of the request lacks tokens", async () => {
      const roomy = bucket("roomy", 5);
      const tight = bucket("tight", 1, 3600, "workspace");
      expect((await consume([roomy, tight])).allowed).toBe(true);
      const denied = await consume([roomy, tight]);
      expect(denied.allowed).toBe(false);
      expect(denied.statuses.map((s) => [s.name, s.remaining])).toEqual([
        ["roomy", 4],
        ["tight", 0],
      ]);
      expect(denied.statuses[0]?.retryAfterSeconds).toBe(0);
      expect(denied.statuses[1]?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      // The denial above left the roomy bucket untouched.
      expect((await consume([roomy])).statuses[0]?.remaining).toBe(3);
    });

    it("reports the longest wait among failing buckets on every failing bucket", async () => {
      const slow = bucket("slow", 1, 3600);
      const quick = bucket("quick", 1, 60);
      const spare = bucket("spare", 10);
      expect((await consume([slow, quick, spare])).allowed).toBe(true);
      const denied = await consume([slow, quick, spare]);
      expect(denied.allowed).toBe(false);
      const [s, q, p] = denied.statuses;
      expect(s?.retryAfterSeconds).toBeGreaterThan(3500);
      expect(q?.retryAfterSeconds).toBe(s?.retryAfterSeconds);
      expect(p?.retryAfterSeconds).toBe(0);
    });

    it("takes a cost of N tokens from every bucket at once", async () => {
      const a = bucket("a", 10);
      const b = bucket("b", 8);
      const first = await consume([a, b], 4);
      expect(first.statuses.map((s) => s.remaining)).toEqual([6, 4]);
      expect((await consume([a, b], 4)).statuses.map((s) => s.remaining)).toEqual([2, 0]);
      const denied = await consume([a, b], 4);
      expect(denied.allowed).toBe(false);
      expect(denied.statuses.map((s) => s.remaining)).toEqual([2, 0]);
      expect((await consume([a], 2)).statuses[0]?.remaining).toBe(0);
    });

    it("always denies a cost above the capacity and asks to wait a full period", async () => {
      const b = bucket("small", 5, 60);
      const denied = await consume([b], 6);
      expect(denied.allowed).toBe(false);
      expect(denied.statuses[0]).toMatchObject({ remaining: 5, retryAfterSeconds: 60 });
      expect((await consume([b], 5)).allowed).toBe(true);
    });

    it("refills tokens continuously over the period", async () => {
      // 2 tokens per second.
      const b = bucket("refill", 4, 2);
      expect((await consume([b], 4)).statuses[0]?.remaining).toBe(0);
      // Refilling all four tokens would take two seconds.
      expect((await consume([b], 4)).allowed).toBe(false);
      await sleep(1200);
      const later = await consume([b], 2);
      expect(later.allowed).toBe(true);
      expect(later.statuses[0]?.remaining).toBeGreaterThanOrEqual(0);
    });

    it("never refills a bucket beyond its capacity", async () => {
      const b = bucket("brief", 3, 0.2);
      expect((await consume([b])).statuses[0]?.remaining).toBe(2);
      await sleep(500);
      expect((await consume([b])).statuses[0]?.remaining).toBe(2);
    });

    it("describes each bucket for rate-limit headers", async () => {
      // 1 token per second.
      const b = bucket("headers", 10, 10);
      const before = Date.now();
      const admitted = await consume([b], 3);
      const after = Date.now();
      expect(admitted.statuses[0]).toMatchObject({ limit: 10, remaining: 7, retryAfterSeconds: 0 });
      // Three missing tokens take three seconds to come back.
      const resetAt = admitted.statuses[0]?.resetAt ?? 0;
      expect(Number.isInteger(resetAt)).toBe(true);
      expect(resetAt).toBeGreaterThanOrEqual(Math.floor(before / 1000) + 3);
      // Date.now() drops the fraction of a millisecond that the limiter's clock (Redis TIME, in µs) keeps: the time
      // the reply was read lies before after + 1, not necessarily before after.
      expect(resetAt).toBeLessThanOrEqual(Math.ceil((after + 1) / 1000) + 3);

      const denied = await consume([b], 9);
      expect(denied.allowed).toBe(false);
      const status = denied.statuses[0];
      expect(status?.remaining).toBe(7);
      // Two more tokens are needed, minus whatever trickled in since.
      expect(status?.retryAfterSeconds).toBeGreaterThanOrEqual(1);
      expect(status?.retryAfterSeconds).toBeLessThanOrEqual(2);
      expect(status?.resetAt).toBeLessThanOrEqual(Math.ceil((Date.now() + 1) / 1000) + 3);
    });

    it("applies a changed capacity on the next call, clamping stored tokens", async () => {
      expect((await consume([bucket("plan", 10)], 5)).statuses[0]?.remaining).toBe(5);
      const shrunk = await consume([bucket("plan", 3)]);
      expect(shrunk.allowed).toBe(true);
      expect(shrunk.statuses[0]).toMatchObject({ limit: 3, remaining: 2 });
      const grown = await consume([bucket("plan", 20)]);
      expect(grown.statuses[0]).toMatchObject({ limit: 20, remaining: 1 });
    });

    it("keeps buckets of different tags independent", async () => {
      const b = bucket("shared-id", 1);
      const other = freshTag();
      expect((await consume([b])).allowed).toBe(true);
      expect((await consume([b])).allowed).toBe(false);
      expect((await consume([b], 1, other)).allowed).toBe(true);
    });

    it("allows a request without buckets and reports nothing", async () => {
      expect(await consume([])).toEqual({ allowed: true, statuses: [] });
    });

    it("rejects an invalid request instead of deciding it", async () => {
      await expect(consume([bucket("x", 1)], -1)).rejects.toThrow(RangeError);
      await expect(consume([bucket("x", 1)], 1, "")).rejects.toThrow(RangeError);
      await expect(consume([bucket("x", 0)])).rejects.toThrow(RangeError);
    });
  });
}
