/**
 * A request the Redis limiter answered as not counted (it rejected: the caller then fails open or closed) is never
 * counted, whenever Redis stalls and resumes around the deadline. Needs `redis-server`: each file stops its own.
 */
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LimitRequest } from "../../src/domain/ports.js";
import { createRedisLimiter, type RedisRateLimiter } from "../../src/ratelimit/redis-limiter.js";
import { type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis-server.js";
import { bucket, freshTag } from "./limiter-behaviour.js";
import { consumedFrom, drainConnection, stallAround, stallExamples, stallTimings } from "./stall-timing.js";

/** The limiter's own deadline: short, so that a stall around it keeps each run brief. */
const TIMEOUT_MS = 60;
/** Requests in flight during each stall: more than one script call's worth when fired in several waves. */
const IN_FLIGHT = 16;
/** Large enough that no request of a run is denied; a year-long period makes refill negligible. */
const CAPACITY = 64;
const YEAR_SECONDS = 31_536_000;

type Outcome = "counted" | "not counted";

describe.skipIf(!redisServerAvailable())(
  "redis limiter when Redis stalls around the deadline (needs Redis)",
  () => {
    let server: RedisServerHandle;
    let limiter: RedisRateLimiter;
    let admin: Redis;

    beforeAll(async () => {
      server = await startRedisServer();
      limiter = createRedisLimiter({ url: server.url, commandTimeoutMs: TIMEOUT_MS });
      await limiter.ready();
      admin = new Redis(server.url);
    });
    afterAll(async () => {
      admin?.disconnect();
      await limiter?.close();
      await server?.stop();
    });

    /** One consume, as its caller sees it: counted when charged and allowed, not counted when it rejected. */
    const outcome = (request: LimitRequest): Promise<Outcome> =>
      limiter.consume(request).then(
        (result) => {
          // Never expected: the bucket holds more than a run asks for, and a denial would be neither.
          if (!result.allowed) throw new Error("a request was denied");
          return "counted";
        },
        () => "not counted",
      );

    /** A consume on a bucket of its own, through the same connection, that succeeds only when Redis answered in time. */
    const barrier = () =>
      limiter.consume({ tag: freshTag(), buckets: [bucket("barrier", 1)], cost: 1 }).then(
        () => true,
        () => false,
      );

    it("charges exactly the requests it answered as counted, whenever Redis is stopped and resumed", async () => {
      // Learn the script and Redis's clock first, as a running service would have.
      await drainConnection(barrier);
      let notCounted = 0;
      await fc.assert(
        fc.asyncProperty(stallTimings(), fc.integer({ min: 1, max: 3 }), async (timing, cost) => {
          const tag = freshTag();
          const request: LimitRequest = { tag, buckets: [bucket("stall", CAPACITY, YEAR_SECONDS)], cost };
          const perWave = Math.ceil(IN_FLIGHT / timing.waves);
          const outcomes = await stallAround(server, TIMEOUT_MS, timing, () =>
            Array.from({ length: perWave }, () => outcome(request)),
          );
          await drainConnection(barrier);
          const counted = outcomes.filter((o) => o === "counted").length;
          notCounted += outcomes.length - counted;
          const consumed = await consumedFrom(admin, `km:rl:{${tag}}:stall`, CAPACITY);
          // No more than was counted (a late charge), and no less (a refund too many).
          expect(consumed).toBeCloseTo(counted * cost, 3);
        }),
        { numRuns: 14, examples: stallExamples().map(([timing]) => [timing, 2]) },
      );
      // The property was about something: requests were answered as not counted while Redis was stopped.
      expect(notCounted).toBeGreaterThan(0);
    }, 180_000);
  },
);
