import { EventEmitter } from "node:events";
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { REFUND_LUA, REFUND_SHA } from "../../src/ratelimit/late-refund.js";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { bucket } from "./limiter-behaviour.js";

type Arg = string | number | Buffer;
type Reply = (args: Arg[]) => Promise<unknown>;

/**
 * Just enough of an ioredis client to script the replies the limiter sees. The script takes batches; these tests
 * send one request at a time, so `reply` sees that request's arguments and its answer is wrapped as a batch of one.
 * Refund script calls are recorded apart, in `refunds`, and answered by `refund`.
 */
function fakeClient(evalsha: Reply, evalLua: Reply = evalsha, refund: Reply = async () => 1) {
  const calls: { command: string; args: Arg[] }[] = [];
  const refunds: Arg[][] = [];
  const batchOfOne = (reply: Reply, args: Arg[]) => {
    expect(numbersOf(args)[0]).toBe(1);
    return reply(args).then((r) => [r]);
  };
  const client = Object.assign(new EventEmitter(), {
    status: "ready",
    evalshaBuffer: (sha: string, ...args: Arg[]) => {
      if (sha === REFUND_SHA) {
        refunds.push(args);
        return refund(args);
      }
      calls.push({ command: "evalsha", args });
      return batchOfOne(evalsha, args);
    },
    evalBuffer: (lua: string, ...args: Arg[]) => {
      if (lua === REFUND_LUA) throw new Error("the refund script is loaded with EVALSHA first");
      calls.push({ command: "eval", args });
      return batchOfOne(evalLua, args);
    },
  });
  return { client: client as unknown as Redis, calls, refunds };
}

const request = { tag: "w", buckets: [bucket("b", 5)], cost: 1 };
const nowUs = (offsetMs = 0) => (Date.now() + offsetMs) * 1000;
/**
 * Arguments: key count, the key, then one binary argument of little-endian doubles: request count, deadline µs,
 * then per request its cost, bucket count and buckets.
 */
const numbersOf = (args: Arg[]) => {
  const packed = args.at(-1);
  if (!Buffer.isBuffer(packed)) throw new Error("expected the requests as one binary argument");
  return Array.from({ length: packed.length / 8 }, (_, i) => packed.readDoubleLE(8 * i));
};
const deadlineOf = (args: Arg[]) => numbersOf(args)[1] ?? Number.NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** One request's reply, as little-endian doubles: status, Redis time in µs, then tokens. */
const reply = (...parts: number[]) => {
  const out = Buffer.alloc(8 * parts.length);
  for (const [i, part] of parts.entries()) out.writeDoubleLE(part, 8 * i);
  return out;
};

describe("redis limiter, against a scripted client", () => {
  it("sends the requests with a deadline in Redis time, then each one's cost and buckets, as one binary argument", async () => {
    const { client, calls } = fakeClient(async () => reply(1, nowUs(), 4));
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 50 });
    const before = Date.now();
    expect((await limiter.consume(request)).statuses[0]?.remaining).toBe(4);
    const args = calls[0]?.args ?? [];
    // One key, then: one request, the deadline, cost 1, one bucket at KEYS[1] with capacity 5 over 3600 s.
    expect(args.slice(0, 2)).toEqual([1, "km:rl:{w}:b"]);
    expect(numbersOf(args)).toEqual([1, deadlineOf(args), 1, 1, 1, 5, 3600]);
    // A clock assumed in step with ours (no reply seen yet): the client's own deadline, less a small margin.
    const deadlineMs = deadlineOf(args) / 1000;
    expect(deadlineMs).toBeGreaterThanOrEqual(before + 50 - 5);
    expect(deadlineMs).toBeLessThanOrEqual(Date.now() + 50);
  });

  it("never sends a deadline later than its own in Redis's clock, whose offset it learns from the replies", async () => {
    // Redis's clock is 5 s ahead of ours.
    const { client, calls } = fakeClient(async () => reply(1, nowUs(5000), 4));
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 50 });
    await limiter.consume(request);
    const before = Date.now();
    await limiter.consume(request);
    const deadlineMs = deadlineOf(calls[1]?.args ?? []) / 1000;
    // The client gives up 50 ms after it sends, at most `Date.now() + 50` in our clock, `+ 5000` in Redis's.
    expect(deadlineMs).toBeLessThanOrEqual(Date.now() + 5000 + 50);
    expect(deadlineMs).toBeGreaterThanOrEqual(before + 5000 + 50 - 5);
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

  it("rejects, never denies nor retries, a request the script refused as stale, and learns Redis's clock from it", async () => {
    let stale = true;
    const { client, calls } = fakeClient(async () =>
      stale ? reply(-1, nowUs(5000)) : reply(1, nowUs(5000), 4),
    );
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 500 });
    await expect(limiter.consume(request)).rejects.toThrow(/nothing was charged/);
    expect(calls).toHaveLength(1);
    stale = false;
    expect((await limiter.consume(request)).allowed).toBe(true);
    expect(deadlineOf(calls[1]?.args ?? []) - deadlineOf(calls[0]?.args ?? [])).toBeGreaterThan(4_000_000);
  });

  it("gives back exactly what a reply that arrived after its deadline charged, once, with the bucket's limit", async () => {
    const { client, refunds } = fakeClient(async () => {
      await sleep(120);
      return reply(1, nowUs(), 2);
    });
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 30 });
    await expect(limiter.consume({ ...request, cost: 3 })).rejects.toThrow(/within 30 ms/);
    expect(refunds).toEqual([]);
    await sleep(200);
    expect(refunds).toHaveLength(1);
    const [keyCount, key, marker, args] = refunds[0] ?? [];
    expect([keyCount, key]).toEqual([2, "km:rl:{w}:b"]);
    // The marker shares the bucket's hash tag, so a cluster keeps it in the bucket's slot.
    expect(marker).toMatch(/^km:rl:\{w\}refund:\S+$/);
    // Capacity 5 over 3600 s, 3 tokens back.
    expect(numbersOf([args as Buffer])).toEqual([5, 3600, 3]);
    expect(limiter.refunds).toMatchObject({ started: 1, confirmed: 1, abandoned: 0, dropped: 0 });
  });

  it("gives nothing back for a late reply that charged nothing (denied, stale or refused)", async () => {
    for (const late of [
      reply(0, nowUs(), 0.5),
      reply(-1, nowUs()),
      Buffer.concat([reply(-2, nowUs()), Buffer.from("WRONGTYPE")]),
    ]) {
      const { client, refunds } = fakeClient(async () => {
        await sleep(80);
        return late;
      });
      const limiter = createRedisLimiter({ client, commandTimeoutMs: 20 });
      await expect(limiter.consume(request)).rejects.toThrow(/within 20 ms/);
      await sleep(120);
      expect(refunds).toEqual([]);
    }
  });

  it("resends a refund that failed or hung, under the same marker so that Redis applies it at most once", async () => {
    let attempt = 0;
    const { client, refunds } = fakeClient(
      async () => {
        await sleep(60);
        return reply(1, nowUs(), 4);
      },
      undefined,
      () => {
        attempt++;
        if (attempt === 1) return Promise.reject(new Error("Connection is closed."));
        if (attempt === 2) return new Promise(() => {});
        return Promise.resolve(1);
      },
    );
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 20 });
    await expect(limiter.consume(request)).rejects.toThrow();
    // The second attempt hangs for the refund's own timeout (at least a second) before the third is sent.
    for (let i = 0; i < 100 && limiter.refunds.confirmed === 0; i++) await sleep(50);
    expect(refunds).toHaveLength(3);
    expect(new Set(refunds.map((args) => args[2])).size).toBe(1);
    expect(limiter.refunds).toMatchObject({ started: 1, confirmed: 1, abandoned: 0 });
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
