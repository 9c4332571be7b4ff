import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { bucket } from "./limiter-behaviour.js";

type Arg = string | number | Buffer;
type Reply = (args: Arg[]) => Promise<unknown>;

/**
 * Just enough of an ioredis client to script the replies the limiter sees. The script takes batches; these tests
 * send one request at a time, so `reply` sees that request's arguments and its answer is wrapped as a batch of one.
 */
function fakeClient(evalsha: Reply, evalLua: Reply = evalsha) {
  const calls: { command: string; args: Arg[] }[] = [];
  const batchOfOne = (reply: Reply, args: Arg[]) => {
    expect(numbersOf(args)[0]).toBe(1);
    return reply(args).then((r) => [r]);
  };
  const client = Object.assign(new EventEmitter(), {
    status: "ready",
    evalshaBuffer: (_sha: string, ...args: Arg[]) => {
      calls.push({ command: "evalsha", args });
      return batchOfOne(evalsha, args);
    },
    evalBuffer: (_lua: string, ...args: Arg[]) => {
      calls.push({ command: "eval", args });
      return batchOfOne(evalLua, args);
    },
  });
  return { client: client as unknown as Redis, calls };
}

const request = { tag: "w", buckets: [bucket("b", 5)], cost: 1 };
const nowUs = (offsetMs = 0) => (Date.now() + offsetMs) * 1000;
/**
 * Arguments: key count, the key, then one binary argument of little-endian doubles: request count, cost, deadline
 * µs, bucket count, the buckets.
 */
const numbersOf = (args: Arg[]) => {
  const packed = args.at(-1);
  if (!Buffer.isBuffer(packed)) throw new Error("expected the requests as one binary argument");
  return Array.from({ length: packed.length / 8 }, (_, i) => packed.readDoubleLE(8 * i));
};
const deadlineOf = (args: Arg[]) => numbersOf(args)[2] ?? Number.NaN;
/** One request's reply, as little-endian doubles: status, Redis time in µs, then tokens. */
const reply = (...parts: number[]) => {
  const out = Buffer.alloc(8 * parts.length);
  for (const [i, part] of parts.entries()) out.writeDoubleLE(part, 8 * i);
  return out;
};

describe("redis limiter, against a scripted client", () => {
  it("sends each request with its cost, a deadline in Redis time and its buckets as one binary argument", async () => {
    const { client, calls } = fakeClient(async () => reply(1, nowUs(), 4));
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 50 });
    const before = Date.now();
    expect((await limiter.consume(request)).statuses[0]?.remaining).toBe(4);
    const args = calls[0]?.args ?? [];
    // One key, then: one request, cost 1, its deadline, one bucket at KEYS[1] with capacity 5 over 3600 s.
    expect(args.slice(0, 2)).toEqual([1, "km:rl:{w}:b"]);
    expect(numbersOf(args)).toEqual([1, 1, deadlineOf(args), 1, 1, 5, 3600]);
    const deadlineMs = deadlineOf(args) / 1000;
    expect(deadlineMs).toBeGreaterThanOrEqual(before + 50);
    expect(deadlineMs).toBeLessThan(Date.now() + 1000);
  });

  it("reloads the script with EVAL when Redis answers NOSCRIPT", async () => {
    const { client, calls } = fakeClient(
      async () => {
        throw new Error("NOSCRIPT No matching script. Please use EVAL.");
      },
      async () => reply(1, nowUs(), 4),
    );
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    expect((await limiter.consume(request)).allowed).toBe(true);
    expect(calls.map((c) => c.command)).toEqual(["evalsha", "eval"]);
  });

  it("retries once, with a later deadline, when a Redis clock ahead of ours refuses a request in time", async () => {
    let first = true;
    const { client, calls } = fakeClient(async () => {
      if (!first) return reply(1, nowUs(5000), 4);
      first = false;
      return reply(-1, nowUs(5000));
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
    const { client, calls } = fakeClient(async () => reply(-1, nowUs(5000)));
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
    const malformed = [
      reply(1, nowUs()),
      reply(1, nowUs(), 4, 4),
      reply(7, nowUs(), 4),
      reply(1, Number.NaN, 4),
      reply(1, nowUs(), Number.POSITIVE_INFINITY),
      Buffer.from("1,1796000000000000,4"),
    ];
    for (const bad of malformed) {
      const { client } = fakeClient(async () => bad);
      const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
      await expect(limiter.consume(request)).rejects.toThrow(/malformed/);
    }
  });

  it("rejects with Redis's own words when Redis refused to read a bucket", async () => {
    const refused = Buffer.concat([reply(-2, nowUs()), Buffer.from("WRONGTYPE Operation against a key")]);
    const { client } = fakeClient(async () => refused);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    await expect(limiter.consume(request)).rejects.toThrow(/refused a bucket: WRONGTYPE Operation/);
  });

  it("sends a bucket's new limit when the bucket changes inside a frozen list", async () => {
    const { client, calls } = fakeClient(async () => reply(1, nowUs(), 4));
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    const mutable = bucket("b", 5);
    const list = Object.freeze([mutable]);
    await limiter.consume({ tag: "w", buckets: list, cost: 1 });
    mutable.limit = { ...mutable.limit, capacity: 7 };
    await limiter.consume({ tag: "w", buckets: list, cost: 1 });
    expect(calls.map((c) => numbersOf(c.args)[5])).toEqual([5, 7]);
  });
});
