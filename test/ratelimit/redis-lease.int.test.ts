import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLeasingLimiter, type LeaseBackend } from "../../src/ratelimit/lease-limiter.js";
import { createRedisLimiter, type RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { freezeList } from "./lease-fixtures.js";
import { bucket, freshTag } from "./limiter-behaviour.js";
import { redisTestsEnabled, sharedRedis } from "./shared-redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!redisTestsEnabled)("leases from the redis limiter (needs Redis)", () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  const open: RedisRateLimiter[] = [];
  const connect = async (): Promise<RedisRateLimiter> => {
    const limiter = createRedisLimiter({ url: redis.url, commandTimeoutMs: 2000 });
    await limiter.ready();
    open.push(limiter);
    return limiter;
  };
  /** Waits (bounded) until Redis confirmed every give-back the limiter started. */
  const settled = async (limiter: RedisRateLimiter) => {
    for (let i = 0; i < 500 && limiter.refunds.confirmed < limiter.refunds.started; i++) await sleep(10);
    expect(limiter.refunds.confirmed).toBe(limiter.refunds.started);
  };

  beforeAll(async () => {
    redis = await sharedRedis();
  }, 20_000);
  afterAll(async () => {
    for (const limiter of open) await limiter.close();
    await redis?.stop();
  });

  it("gives tokens back to every bucket of a request, capped at each one's capacity", async () => {
    const limiter = await connect();
    const tag = freshTag();
    const buckets = [bucket("key", 100), bucket("workspace", 1000, 3600, "workspace")];
    await limiter.consume({ tag, buckets, cost: 60 });
    limiter.giveBack({ tag, buckets, cost: 0 }, 30);
    await settled(limiter);
    const after = await limiter.consume({ tag, buckets, cost: 0 });
    expect(after.statuses.map((s) => s.remaining)).toEqual([70, 970]);
    limiter.giveBack({ tag, buckets, cost: 0 }, 500);
    await settled(limiter);
    const capped = await limiter.consume({ tag, buckets, cost: 0 });
    expect(capped.statuses.map((s) => s.remaining)).toEqual([100, 1000]);
  });

  it("renews a busy key's lease instead of giving it back, so Redis gains no refund marker per lease", async () => {
    const tag = freshTag();
    const buckets = freezeList(bucket("key", 1_000_000, 3600));
    const leasing = createLeasingLimiter(await connect(), { leaseMs: 50 });
    const started = performance.now();
    // Busy for six lease times.
    while (performance.now() - started < 300) {
      await Promise.all(Array.from({ length: 32 }, () => leasing.consume({ tag, buckets, cost: 1 })));
      await sleep(1);
    }
    const admin = new Redis(redis.url);
    try {
      expect(await admin.keys(`km:rl:{${tag}}refund:*`)).toEqual([]);
      await leasing.close();
      for (let i = 0; i < 100 && (await admin.keys(`km:rl:{${tag}}refund:*`)).length === 0; i++)
        await sleep(10);
      // Closing gives the last lease back: one marker.
      expect(await admin.keys(`km:rl:{${tag}}refund:*`)).toHaveLength(1);
    } finally {
      await admin.quit();
    }
  });

  it("admits at most the capacity across two instances and holds no token once they close", async () => {
    const capacity = 5000;
    const tag = freshTag();
    const buckets = freezeList(bucket("key", capacity, 1e9));
    const backends = [await connect(), await connect()];
    let calls = 0;
    const instances = backends.map((redisLimiter) => {
      const counted: LeaseBackend = {
        consume: (request) => {
          calls++;
          return redisLimiter.consume(request);
        },
        giveBack: (request, amount) => redisLimiter.giveBack(request, amount),
        close: async () => {},
      };
      return createLeasingLimiter(counted, { leaseMs: 100 });
    });
    let admitted = 0;
    let requests = 0;
    // Bursts from both instances until the bucket refuses, as Checks of two workers would arrive.
    for (let round = 0; round < 200 && admitted < capacity; round++) {
      const burst = instances.flatMap((instance) =>
        Array.from({ length: 32 }, () => instance.consume({ tag, buckets, cost: 1 })),
      );
      requests += burst.length;
      for (const result of await Promise.all(burst)) if (result.allowed) admitted++;
      await sleep(2);
    }
    expect(admitted).toBeLessThanOrEqual(capacity);
    expect(calls).toBeLessThan(requests / 2);
    for (const instance of instances) await instance.close();
    for (const limiter of backends) await settled(limiter);
    const left = await backends[0]!.consume({ tag, buckets, cost: 0 });
    expect(left.statuses[0]!.remaining).toBe(capacity - admitted);
  });
});
