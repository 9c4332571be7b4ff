import { execFileSync } from "node:child_process";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisLimiter, type RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { CONSUME_LUA, SCRIPT_ALLOWED, SCRIPT_STALE } from "../../src/ratelimit/redis-script.js";
import { decodeReply, encodeRequests } from "../../src/ratelimit/script-codec.js";
import { startRedisServer } from "../support/redis-server.js";
import { bucket, describeLimiterBehaviour, freshTag } from "./limiter-behaviour.js";
import { redisTestsEnabled, sharedRedis } from "./shared-redis.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(!redisTestsEnabled)("redis limiter", () => {
  let redis: Awaited<ReturnType<typeof sharedRedis>>;
  let admin: Redis;
  // Generous: these tests are about semantics, and the machine running them may be busy.
  const connect = async (options: { keyPrefix?: string } = {}): Promise<RedisRateLimiter> => {
    const limiter = createRedisLimiter({ url: redis.url, commandTimeoutMs: 2000, ...options });
    await limiter.ready();
    return limiter;
  };

  beforeAll(async () => {
    redis = await sharedRedis();
    admin = new Redis(redis.url);
  }, 20_000);
  afterAll(async () => {
    await admin?.quit();
    await redis?.stop();
  });

  describeLimiterBehaviour("redis limiter", () => connect());

  it("keeps working after the script cache is flushed", async () => {
    const limiter = await connect();
    const b = bucket("flush", 5);
    const tag = freshTag();
    expect((await limiter.consume({ tag, buckets: [b], cost: 1 })).statuses[0]?.remaining).toBe(4);
    await admin.script("FLUSH");
    expect((await limiter.consume({ tag, buckets: [b], cost: 1 })).statuses[0]?.remaining).toBe(3);
    expect((await limiter.consume({ tag, buckets: [b], cost: 1 })).statuses[0]?.remaining).toBe(2);
    await limiter.close();
  });

  it("stores each bucket as a hash under km:rl:{tag}:<id> that expires once refilled", async () => {
    const limiter = await connect();
    const tag = freshTag();
    await limiter.consume({ tag, buckets: [bucket("minute", 10, 60), bucket("blink", 1, 0.2)], cost: 1 });
    const key = `km:rl:{${tag}}:minute`;
    expect(await admin.type(key)).toBe("hash");
    // One token of ten over sixty seconds takes six seconds to return, plus a one-second margin.
    const ttl = await admin.pttl(key);
    expect(ttl).toBeGreaterThan(5000);
    expect(ttl).toBeLessThanOrEqual(7000);
    const blink = `km:rl:{${tag}}:blink`;
    expect(await admin.pttl(blink)).toBeGreaterThan(0);
    await sleep(1500);
    expect(await admin.exists(blink)).toBe(0);
    await limiter.close();
  });

  it("decides each request of one batched script call on its own, in the order they were made", async () => {
    const limiter = await connect();
    const [t1, t2] = [freshTag(), freshTag()];
    const shared = bucket("shared", 2);
    // All issued in one event-loop turn, so they travel in one script call.
    const results = await Promise.all([
      limiter.consume({ tag: t1, buckets: [shared], cost: 1 }),
      limiter.consume({ tag: t1, buckets: [shared, bucket("big", 5)], cost: 3 }),
      limiter.consume({ tag: t1, buckets: [shared], cost: 1 }),
      limiter.consume({ tag: t2, buckets: [shared], cost: 2 }),
      limiter.consume({ tag: t1, buckets: [shared], cost: 1 }),
    ]);
    expect(results.map((r) => r.allowed)).toEqual([true, false, true, true, false]);
    expect(results.map((r) => r.statuses[0]?.remaining)).toEqual([1, 1, 0, 0, 0]);
    // The denied request charged none of its buckets, not even the one that had room.
    expect(await admin.exists(`km:rl:{${t1}}:big`)).toBe(0);
    await limiter.close();
  });

  it("reads and writes a bucket many requests of one script call share once, leaving what one-by-one calls would", async () => {
    // A private server, so that its command counts are this test's alone.
    const own = await startRedisServer();
    const limiter = createRedisLimiter({ url: own.url, commandTimeoutMs: 2000 });
    const counter = new Redis(own.url);
    try {
      await limiter.ready();
      const tag = freshTag();
      const hot = bucket("hot", 100, 60);
      // Loads the script, so the batch below is one EVALSHA rather than a NOSCRIPT miss and an EVAL.
      await limiter.consume({ tag: freshTag(), buckets: [hot], cost: 1 });
      await counter.config("RESETSTAT");
      const results = await Promise.all(
        Array.from({ length: 10 }, () => limiter.consume({ tag, buckets: [hot], cost: 1 })),
      );
      expect(results.map((r) => r.statuses[0]?.remaining)).toEqual([99, 98, 97, 96, 95, 94, 93, 92, 91, 90]);
      const stats = await counter.info("commandstats");
      const calls = (command: string) =>
        Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
      expect([calls("evalsha"), calls("hmget"), calls("hset"), calls("pexpire")]).toEqual([1, 1, 1, 1]);
      const key = `km:rl:{${tag}}:hot`;
      expect(Number(await counter.hget(key, "t"))).toBe(90);
      // Ten tokens of a hundred over sixty seconds take six seconds to return, plus the one-second margin.
      const ttl = await counter.pttl(key);
      expect(ttl).toBeGreaterThan(6000);
      expect(ttl).toBeLessThanOrEqual(7000);
      expect((await limiter.consume({ tag, buckets: [hot], cost: 1 })).statuses[0]?.remaining).toBe(89);
    } finally {
      await limiter.close();
      counter.disconnect();
      await own.stop();
    }
  });

  it("writes nothing for a denied request", async () => {
    const limiter = await connect();
    const tag = freshTag();
    await limiter.consume({ tag, buckets: [bucket("big", 3)], cost: 4 });
    expect(await admin.exists(`km:rl:{${tag}}:big`)).toBe(0);
    await limiter.close();
  });

  it("puts its keys under the configured prefix", async () => {
    const limiter = await connect({ keyPrefix: "other:" });
    const tag = freshTag();
    await limiter.consume({ tag, buckets: [bucket("p", 3)], cost: 1 });
    expect(await admin.exists(`other:{${tag}}:p`)).toBe(1);
    await limiter.close();
  });

  it("rejects, never denies, when Redis returns an error", async () => {
    const limiter = await connect();
    const tag = freshTag();
    await admin.set(`km:rl:{${tag}}:typed`, "not a hash", "EX", 60);
    await expect(limiter.consume({ tag, buckets: [bucket("typed", 3)], cost: 1 })).rejects.toThrow(
      /WRONGTYPE/,
    );
    await limiter.close();
  });

  it("charges nothing for a request the script runs after its deadline, and answers it as stale", async () => {
    const key = `km:rl:{${freshTag()}}:late`;
    const run = async (deadlineUs: number) => {
      const args = encodeRequests(
        new Map([[key, 1]]),
        [{ keys: [key], limits: [5, 60], cost: 1 }],
        deadlineUs,
      );
      const replies = (await admin.callBuffer("eval", CONSUME_LUA, 1, key, args)) as Buffer[];
      return decodeReply(replies[0], 1);
    };
    expect(await run(1)).toMatchObject({ status: SCRIPT_STALE, tokens: [] });
    expect(await admin.exists(key)).toBe(0);
    expect(await run(0)).toMatchObject({ status: SCRIPT_ALLOWED, tokens: [4] });
  });

  it("accepts a reply Redis sent in time although the process stalled past the deadline before reading it", async () => {
    const limiter = createRedisLimiter({ url: redis.url, commandTimeoutMs: 300 });
    try {
      await limiter.ready();
      const tag = freshTag();
      const key = `km:rl:{${tag}}:stall`;
      // Loads the script first: a NOSCRIPT reply could not be answered with EVAL while the loop is blocked.
      await limiter.consume({ tag, buckets: [bucket("warm", 10)], cost: 1 });
      const pending = limiter.consume({ tag, buckets: [bucket("stall", 10)], cost: 1 });
      // The batch goes out in the first check phase; this callback runs right after it and blocks the loop, as a
      // long garbage collection would, until the deadline has passed and Redis has run the script (asked over
      // another connection, synchronously: a busy machine may delay Redis, and then there is no reply to read).
      await new Promise<void>((resolve, reject) =>
        setImmediate(() => {
          const start = Date.now();
          const charged = () =>
            execFileSync("redis-cli", ["-u", redis.url, "exists", key], { encoding: "utf8" }).trim() === "1";
          while (Date.now() - start < 400 || !charged()) {
            if (Date.now() - start > 5000) {
              reject(new Error("Redis never ran the script"));
              return;
            }
          }
          resolve();
        }),
      );
      await expect(pending).resolves.toMatchObject({ allowed: true });
    } finally {
      await limiter.close();
    }
  });

  it("fails only the request whose bucket Redis refuses when it shares a script call with others", async () => {
    const limiter = await connect();
    const tag = freshTag();
    await admin.set(`km:rl:{${tag}}:typed`, "not a hash", "EX", 60);
    const [before, bad, after] = await Promise.allSettled([
      limiter.consume({ tag, buckets: [bucket("fine", 3)], cost: 1 }),
      limiter.consume({ tag, buckets: [bucket("fine", 3), bucket("typed", 3)], cost: 1 }),
      limiter.consume({ tag, buckets: [bucket("fine", 3)], cost: 1 }),
    ]);
    expect(bad).toMatchObject({
      status: "rejected",
      reason: { message: expect.stringMatching(/WRONGTYPE/) },
    });
    // The refused request charged nothing, not even its readable bucket: the other two took one token each.
    expect(before).toMatchObject({ status: "fulfilled", value: { statuses: [{ remaining: 2 }] } });
    expect(after).toMatchObject({ status: "fulfilled", value: { statuses: [{ remaining: 1 }] } });
    await limiter.close();
  });

  it("rejects after close and leaves a client it was given open", async () => {
    const client = new Redis(redis.url);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 2000 });
    await limiter.ready();
    expect((await limiter.consume({ tag: freshTag(), buckets: [bucket("c", 1)], cost: 1 })).allowed).toBe(
      true,
    );
    await limiter.close();
    await expect(limiter.consume({ tag: freshTag(), buckets: [bucket("c", 1)], cost: 1 })).rejects.toThrow();
    expect(await client.ping()).toBe("PONG");
    await client.quit();
  });
});
