import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { bucket } from "./limiter-behaviour.js";

type Reply = (args: (string | number)[]) => Promise<unknown>;

/**
 * Just enough of an ioredis client to script the replies the limiter sees. The script takes batches; these tests
 * send one request at a time, so `reply` sees that request's arguments and its answer is wrapped as a batch of one.
 */
function fakeClient(evalsha: Reply, evalLua: Reply = evalsha) {
  const calls: { command: string; args: (string | number)[] }[] = [];
  const batchOfOne = (reply: Reply, args: (string | number)[]) => {
    expect(args[2]).toBe(1);
    return reply(args).then((r) => [r]);
  };
  const client = Object.assign(new EventEmitter(), {
    status: "ready",
    evalsha: (_sha: string, ...args: (string | number)[]) => {
      calls.push({ command: "evalsha", args });
      return batchOfOne(evalsha, args);
    },
    eval: (_lua: string, ...args: (string | number)[]) => {
      calls.push({ command: "eval", args });
      return batchOfOne(evalLua, args);
    },
  });
  return { client: client as unknown as Redis, calls };
}

const request = { tag: "w", buckets: [bucket("b", 5)], cost: 1 };
const nowUs = (offsetMs = 0) => String((Date.now() + offsetMs) * 1000);
/** Arguments: key count, the key, request count, then cost, deadline µs, bucket count and the limits. */
const deadlineOf = (args: (string | number)[]) => Number(args[4]);

describe("redis limiter, against a scripted client", () => {
  it("sends a deadline in Redis time with every script call", async () => {
    const { client, calls } = fakeClient(async () => [1, nowUs(), "4"]);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 50 });
    const before = Date.now();
    expect((await limiter.consume(request)).statuses[0]?.remaining).toBe(4);
    const deadlineMs = deadlineOf(calls[0]?.args ?? []) / 1000;
    expect(deadlineMs).toBeGreaterThanOrEqual(before + 50);
    expect(deadlineMs).toBeLessThan(Date.now() + 1000);
  });

  it("reloads the script with EVAL when Redis answers NOSCRIPT", async () => {
    const { client, calls } = fakeClient(
      async () => {
        throw new Error("NOSCRIPT No matching script. Please use EVAL.");
      },
      async () => [1, nowUs(), "4"],
    );
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    expect((await limiter.consume(request)).allowed).toBe(true);
    expect(calls.map((c) => c.command)).toEqual(["evalsha", "eval"]);
  });

  it("retries once, with a later deadline, when a Redis clock ahead of ours refuses a request in time", async () => {
    let first = true;
    const { client, calls } = fakeClient(async () => {
      if (!first) return [1, nowUs(5000), "4"];
      first = false;
      return [-1, nowUs(5000)];
    });
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    expect((await limiter.consume(request)).allowed).toBe(true);
    expect(calls).toHaveLength(2);
    expect(deadlineOf(calls[1]?.args ?? []) - deadlineOf(calls[0]?.args ?? [])).toBeGreaterThan(4_000_000);
    // The next request starts from the learned offset and needs no retry.
    await limiter.consume(request);
    expect(calls).toHaveLength(3);
  });

  it("rejects, never denies, when the script keeps refusing the request as stale", async () => {
    const { client, calls } = fakeClient(async () => [-1, nowUs(5000)]);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    await expect(limiter.consume(request)).rejects.toThrow(/nothing was charged/);
    expect(calls).toHaveLength(2);
  });

  it("rejects within its own timer even when the client never answers", async () => {
    const { client } = fakeClient(() => new Promise(() => {}));
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 50 });
    const started = performance.now();
    await expect(limiter.consume(request)).rejects.toThrow(/within 50 ms/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it("rejects a malformed reply instead of guessing", async () => {
    const { client } = fakeClient(async () => [1, nowUs()]);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    await expect(limiter.consume(request)).rejects.toThrow(/malformed/);
  });
});
