/**
 * What a charge costs when its reply arrives after the caller was answered as not counted: the limiter gives it back.
 * Needs Redis (REDIS_URL or `redis-server`).
 */
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitRequest } from "../../src/domain/ports.js";
import { REFUND_LUA } from "../../src/ratelimit/late-refund.js";
import { createRedisLimiter, type RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { delayingClient } from "./delaying-client.js";
import { bucket, freshTag } from "./limiter-behaviour.js";
import { redisTestsEnabled, sharedRedis } from "./shared-redis.js";
import { drainConnection } from "./stall-timing.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Generous, so that no request but the one delayed on purpose misses it on a busy machine. */
const TIMEOUT_MS = 300;
/** How late the delayed reply reaches the limiter: well past its deadline. */
const LATE_BY_MS = TIMEOUT_MS + 100;

/** A bucket's tokens at Redis time `nowUs`, refilled as the script does; a missing bucket is full. */
async function tokensAt(admin: Redis, key: string, capacity: number, period: number, nowUs: number) {
  const [t, ts] = await admin.hmget(key, "t", "ts");
  if (t === null || ts === null) return capacity;
  const elapsedMs = Math.max(0, (nowUs - Number(ts)) / 1000);
  return Math.min(capacity, Math.min(Number(t), capacity) + (elapsedMs * capacity) / (period * 1000));
}

async function redisNowUs(admin: Redis): Promise<number> {
  const [seconds, micros] = await admin.time();
  return Number(seconds) * 1e6 + Number(micros);
}

describe.skipIf(!redisTestsEnabled)("redis limiter refunds of late replies (needs Redis)", () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  let admin: Redis;
  let real: Redis;
  let limiter: RedisRateLimiter;
  let delayNext: (ms: number) => Promise<void>;

  beforeAll(async () => {
    redis = await sharedRedis();
    admin = new Redis(redis.url);
    real = new Redis(redis.url);
    const delaying = delayingClient(real);
    delayNext = delaying.delayNext;
    limiter = createRedisLimiter({ client: delaying.client, commandTimeoutMs: TIMEOUT_MS });
    await limiter.ready();
    // Loads the script, so that no reply below is an EVAL fallback, and lets the limiter learn Redis's clock.
    await drainConnection(() =>
      limiter.consume({ tag: freshTag(), buckets: [bucket("warm", 1)], cost: 1 }).then(() => true),
    );
  }, 20_000);
  afterAll(async () => {
    await limiter?.close();
    real?.disconnect();
    admin?.disconnect();
    await redis?.stop();
  });

  /** Waits (bounded) until Redis confirmed `count` refunds in all. */
  async function refundsConfirmed(count: number): Promise<void> {
    for (let i = 0; i < 500 && limiter.refunds.confirmed < count; i++) await sleep(10);
    expect(limiter.refunds.confirmed).toBe(count);
  }

  it("leaves the bucket as if the late request had never been charged, never lower, whatever came between", async () => {
    const cost = fc.integer({ min: 1, max: 3 });
    let refunded = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          capacity: fc.integer({ min: 2, max: 20 }),
          period: fc.constantFrom(0.5, 2, 3600),
          before: fc.array(cost, { maxLength: 4 }),
          late: fc.integer({ min: 1, max: 5 }),
          between: fc.array(cost, { maxLength: 4 }),
          waitMs: fc.integer({ min: 0, max: 100 }),
        }),
        async ({ capacity, period, before, late, between, waitMs }) => {
          // Twin buckets: both get the same requests in the same script calls (so at the same Redis time),
          // and only the first gets the late one.
          const charged: LimitRequest = {
            tag: freshTag(),
            buckets: [bucket("r", capacity, period)],
            cost: 0,
          };
          const twin: LimitRequest = { ...charged, tag: freshTag() };
          const both = async (c: number) => {
            const [a, b] = await Promise.all([
              limiter.consume({ ...charged, cost: c }),
              limiter.consume({ ...twin, cost: c }),
            ]);
            return a.allowed === b.allowed;
          };
          for (const c of before) expect(await both(c)).toBe(true);
          const confirmedBefore = limiter.refunds.confirmed;
          const startedBefore = limiter.refunds.started;
          const windowStart = Date.now();
          const lateReplyRead = delayNext(LATE_BY_MS);
          await expect(limiter.consume({ ...charged, cost: late })).rejects.toThrow(/did not answer/);
          // Requests between the charge and its refund: the twins can differ here only if the late charge
          // emptied the first, and then the comparison below does not apply.
          let same = true;
          for (const c of between) same = (await both(c)) && same;
          await sleep(waitMs);
          await lateReplyRead;
          const started = limiter.refunds.started - startedBefore;
          await refundsConfirmed(confirmedBefore + started);
          const windowMs = Date.now() - windowStart + 2;
          fc.pre(same);
          refunded += started;
          const now = await redisNowUs(admin);
          const key = (tag: string) => `km:rl:{${tag}}:r`;
          const a = await tokensAt(admin, key(charged.tag), capacity, period, now);
          const b = await tokensAt(admin, key(twin.tag), capacity, period, now);
          // Never less than the twin: the late request is not counted. More only by refill the twin lost while
          // full, which a bucket cannot know afterwards: at most the late cost, and none over a long period.
          expect(a).toBeGreaterThanOrEqual(b - 1e-9);
          const lostToFull = Math.min(late, (windowMs * capacity) / (period * 1000));
          expect(a).toBeLessThanOrEqual(b + lostToFull + 1e-9);
        },
      ),
      { numRuns: 15 },
    );
    // Late requests were charged and given back, not merely refused by the script.
    expect(refunded).toBeGreaterThan(0);
  }, 120_000);

  it("gives back exactly once even when the refund is sent again", async () => {
    const tag = freshTag();
    const request: LimitRequest = { tag, buckets: [bucket("once", 10, 31_536_000)], cost: 4 };
    await limiter.consume({ ...request, cost: 1 });
    const confirmed = limiter.refunds.confirmed;
    const lateReplyRead = delayNext(LATE_BY_MS);
    await expect(limiter.consume(request)).rejects.toThrow();
    await lateReplyRead;
    await refundsConfirmed(confirmed + 1);
    const key = `km:rl:{${tag}}:once`;
    expect(Number(await admin.hget(key, "t"))).toBeCloseTo(9, 6);
    // The refund's marker key, in the bucket's slot, makes a resend of the same refund a no-op.
    const markers = await admin.keys(`km:rl:{${tag}}refund:*`);
    expect(markers).toHaveLength(1);
    expect(await admin.pttl(markers[0]!)).toBeGreaterThan(60_000);
    const args = Buffer.alloc(24);
    for (const [i, n] of [10, 31_536_000, 4].entries()) args.writeDoubleLE(n, 8 * i);
    expect(await admin.eval(REFUND_LUA, 2, key, markers[0]!, args)).toBe(0);
    expect(Number(await admin.hget(key, "t"))).toBeCloseTo(9, 6);
    // A refund under a new marker would apply: the marker alone is what stopped it.
    expect(await admin.eval(REFUND_LUA, 2, key, `km:rl:{${tag}}refund:other`, args)).toBe(1);
    expect(Number(await admin.hget(key, "t"))).toBeCloseTo(10, 6);
  });
});
