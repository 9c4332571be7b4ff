import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitResult } from "../../src/domain/ports.js";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { bucket, freshTag } from "./limiter-behaviour.js";
import { redisTestsEnabled, sharedRedis } from "./shared-redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!redisTestsEnabled)("redis limiter under concurrent clients", () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  beforeAll(async () => {
    redis = await sharedRedis();
  }, 20_000);
  afterAll(async () => {
    await redis?.stop();
  });

  it("never admits more than the capacity plus what refilled meanwhile, across connections", async () => {
    // Two instances stand in for two keymesh processes, each with its own connection.
    const limiters = [0, 1].map(() => createRedisLimiter({ url: redis.url, commandTimeoutMs: 5000 }));
    await Promise.all(limiters.map((l) => l.ready()));
    // Five tokens a second on top of fifty: demand (400 requests in ~2 s) far exceeds supply.
    const b = bucket("hot", 50, 10);
    const tag = freshTag();
    const waves = 20;
    const perWave = 10;

    const started = performance.now();
    const results = await Promise.all(
      limiters.map(async (limiter) => {
        const pending: Promise<LimitResult>[] = [];
        for (let wave = 0; wave < waves; wave++) {
          for (let i = 0; i < perWave; i++) pending.push(limiter.consume({ tag, buckets: [b], cost: 1 }));
          await sleep(100);
        }
        return Promise.all(pending);
      }),
    );
    const elapsedSeconds = (performance.now() - started) / 1000;
    await Promise.all(limiters.map((l) => l.close()));

    const all = results.flat();
    expect(all).toHaveLength(2 * waves * perWave);
    const admitted = all.filter((r) => r.allowed).length;
    expect(admitted).toBeLessThanOrEqual(50 + 5 * elapsedSeconds + 1);
    // Every initial token went to someone: nothing was lost to a race either.
    expect(admitted).toBeGreaterThanOrEqual(50);
    for (const result of all) {
      const remaining = result.statuses[0]?.remaining ?? -1;
      expect(remaining).toBeGreaterThanOrEqual(0);
      expect(remaining).toBeLessThanOrEqual(50);
    }
  }, 30_000);
});
