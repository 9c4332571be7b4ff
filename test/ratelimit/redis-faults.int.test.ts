import { afterEach, describe, expect, it } from "vitest";
import type { LimitRequest } from "../../src/domain/ports.js";
import { createRedisLimiter, type RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis-server.js";
import { bucket, freshTag } from "./limiter-behaviour.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Settles `promise` into what happened and how long it took, so a test can assert it never resolved. */
async function outcome(promise: Promise<unknown>): Promise<{ rejected: boolean; ms: number }> {
  const started = performance.now();
  try {
    await promise;
    return { rejected: false, ms: performance.now() - started };
  } catch {
    return { rejected: true, ms: performance.now() - started };
  }
}

// Each test owns its server, because it kills or freezes it.
describe.skipIf(!redisServerAvailable())("redis limiter when Redis fails", () => {
  let server: RedisServerHandle | undefined;
  let limiter: RedisRateLimiter | undefined;
  afterEach(async () => {
    await limiter?.close();
    await server?.stop();
    limiter = undefined;
    server = undefined;
  });

  async function setUp(): Promise<{
    server: RedisServerHandle;
    limiter: RedisRateLimiter;
    request: LimitRequest;
  }> {
    server = await startRedisServer();
    // Tight enough to prove the bound, loose enough that a busy CI box does not time out the healthy calls.
    limiter = createRedisLimiter({ url: server.url, commandTimeoutMs: 150 });
    await limiter.ready();
    const request = { tag: freshTag(), buckets: [bucket("minute", 10)], cost: 1 };
    expect((await limiter.consume(request)).statuses[0]?.remaining).toBe(9);
    return { server, limiter, request };
  }

  it("rejects quickly, and never denies, once Redis has been killed", async () => {
    const { server, limiter, request } = await setUp();
    process.kill(server.pid, "SIGKILL");
    await server.stop();
    const results = await Promise.all(Array.from({ length: 20 }, () => outcome(limiter.consume(request))));
    for (const result of results) {
      expect(result.rejected).toBe(true);
      expect(result.ms).toBeLessThan(1000);
    }
    await sleep(300);
    const later = await outcome(limiter.consume(request));
    expect(later.rejected).toBe(true);
    expect(later.ms).toBeLessThan(1000);
  });

  it("recovers by itself when Redis comes back on the same address", async () => {
    const { server: first, limiter, request } = await setUp();
    await first.stop();
    await expect(limiter.consume(request)).rejects.toThrow();
    server = await startRedisServer({ port: first.port });
    const giveUpAt = Date.now() + 10_000;
    for (;;) {
      try {
        // A fresh server has no bucket: full again.
        expect((await limiter.consume(request)).statuses[0]?.remaining).toBe(9);
        break;
      } catch (error) {
        if (Date.now() > giveUpAt) throw error;
        await sleep(100);
      }
    }
  });

  it("rejects within the command timeout while Redis hangs, and never applies those requests later", async () => {
    const { server, limiter, request } = await setUp();
    server.pause();
    try {
      const results = await Promise.all(Array.from({ length: 5 }, () => outcome(limiter.consume(request))));
      for (const result of results) {
        expect(result.rejected).toBe(true);
        expect(result.ms).toBeLessThan(1000);
      }
      // Let those requests' deadlines lapse well before Redis reads them.
      await sleep(500);
    } finally {
      server.resume();
    }
    const after = await limiter.consume(request);
    expect(after.allowed).toBe(true);
    // 10 - 1 before the hang - 1 now: none of the five timed-out requests was charged when Redis woke up.
    expect(after.statuses[0]?.remaining).toBe(8);
  });
});
