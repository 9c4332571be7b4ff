import { describe, expect, it } from "vitest";
import { createScriptBatcher } from "../../src/ratelimit/script-batch.js";

type Req = { keys: string[]; id: unknown };
type Call = { keys: string[]; requests: { id: unknown; slots: (number | undefined)[] }[] };

/** A runner that records each call (keys, and each request's keys as KEYS positions) and answers with the ids. */
function echoRunner() {
  const calls: Call[] = [];
  const run = async (keys: string[], slot: ReadonlyMap<string, number>, requests: readonly Req[]) => {
    calls.push({
      keys,
      requests: requests.map((r) => ({ id: r.id, slots: r.keys.map((k) => slot.get(k)) })),
    });
    return requests.map((r) => r.id);
  };
  return { run, calls };
}

const req = (id: unknown, ...keys: string[]): Req => ({ id, keys });

/** Submits `requests` in one event-loop turn to one group; returns the replies and the calls the runner saw. */
async function submitTogether(requests: Req[]) {
  const { run, calls } = echoRunner();
  const batcher = createScriptBatcher(run);
  const replies = await Promise.all(requests.map((r) => batcher.submit("", r)));
  return { replies, calls };
}

describe("script batcher", () => {
  it("sends the requests of one event-loop turn as one call and answers each with its own part", async () => {
    const { replies, calls } = await submitTogether([req("a", "k1"), req("b", "k2", "k3"), req("c", "k4")]);
    expect(replies).toEqual(["a", "b", "c"]);
    expect(calls).toEqual([
      {
        keys: ["k1", "k2", "k3", "k4"],
        requests: [
          { id: "a", slots: [1] },
          { id: "b", slots: [2, 3] },
          { id: "c", slots: [4] },
        ],
      },
    ]);
  });

  it("sends a key that several requests of a call share once, and points each request at it", async () => {
    const { calls } = await submitTogether([req("a", "hot"), req("b", "cold", "hot"), req("c", "hot")]);
    expect(calls).toEqual([
      {
        keys: ["hot", "cold"],
        requests: [
          { id: "a", slots: [1] },
          { id: "b", slots: [2, 1] },
          { id: "c", slots: [1] },
        ],
      },
    ]);
  });

  it("never puts requests of different groups in one call", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run);
    await Promise.all([
      batcher.submit("{w1}", req("x", "a")),
      batcher.submit("{w2}", req("y", "b")),
      batcher.submit("{w1}", req("z", "c")),
    ]);
    expect(calls.map((c) => c.keys)).toEqual([["a", "c"], ["b"]]);
  });

  it("sends a full batch at once and starts a new one", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run, { maxRequests: 2 });
    const pending = [1, 2, 3].map((i) => batcher.submit("", req(i, `k${i}`)));
    // The first two went out synchronously; the third waits for the end of the turn.
    expect(calls).toHaveLength(1);
    expect(await Promise.all(pending)).toEqual([1, 2, 3]);
    expect(calls.map((c) => c.requests.length)).toEqual([2, 1]);
  });

  it("fails every request of a call that fails, and only those", async () => {
    let first = true;
    const batcher = createScriptBatcher(async (_keys, _slot, requests: readonly Req[]) => {
      if (first) {
        first = false;
        throw new Error("connection lost");
      }
      return requests.map((r) => r.id);
    });
    const failed = [batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))];
    await expect(Promise.all(failed)).rejects.toThrow("connection lost");
    await expect(failed[1]).rejects.toThrow("connection lost");
    await expect(batcher.submit("", req(3, "c"))).resolves.toBe(3);
  });

  it("rejects the requests of a call whose runner throws instead of rejecting", async () => {
    const batcher = createScriptBatcher(() => {
      throw new Error("client closed");
    });
    const pending = [batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))];
    for (const p of pending) await expect(p).rejects.toThrow("client closed");
  });

  it("rejects every request when the reply does not have one part per request", async () => {
    const batcher = createScriptBatcher(async () => ["only one"]);
    const pending = [batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))];
    for (const p of pending) await expect(p).rejects.toThrow(/malformed script reply/);
  });

  it("rejects every request of a call still unanswered at the deadline, and a late reply changes nothing", async () => {
    let answer: (reply: unknown) => void = () => {};
    const batcher = createScriptBatcher(() => new Promise((resolve) => (answer = resolve)), {
      timeoutMs: 20,
      timeoutMessage: "too slow",
    });
    const pending = [batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))];
    for (const p of pending) await expect(p).rejects.toThrow("too slow");
    answer([1, 2]);
    for (const p of pending) await expect(p).rejects.toThrow("too slow");
  });

  it("hands the runner the moment the call's callers are told it failed, so the script can refuse to act later", async () => {
    const dues: number[] = [];
    const batcher = createScriptBatcher(
      async (_keys, _slot, requests: readonly Req[], dueAt) => {
        dues.push(dueAt);
        return requests.map((r) => r.id);
      },
      { timeoutMs: 80 },
    );
    const before = Date.now();
    await Promise.all([batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))]);
    expect(dues).toHaveLength(1);
    expect(dues[0]).toBeGreaterThanOrEqual(before + 80);
    expect(dues[0]).toBeLessThanOrEqual(Date.now() + 80);
    const unbounded: number[] = [];
    await createScriptBatcher(async (_k, _s, requests: readonly Req[], dueAt) => {
      unbounded.push(dueAt);
      return requests.map((r) => r.id);
    }).submit("", req(3, "c"));
    expect(unbounded).toEqual([Number.POSITIVE_INFINITY]);
  });

  it("reports a reply that arrives after the deadline, with its requests, so that what it did can be undone", async () => {
    let answer: (reply: unknown) => void = () => {};
    const late: { requests: readonly Req[]; reply: readonly unknown[] }[] = [];
    const batcher = createScriptBatcher(() => new Promise((resolve) => (answer = resolve)), {
      timeoutMs: 20,
      timeoutMessage: "too slow",
      onLate: (requests: readonly Req[], reply) => late.push({ requests, reply }),
    });
    const pending = [batcher.submit("", req(1, "a")), batcher.submit("", req(2, "b"))];
    for (const p of pending) await expect(p).rejects.toThrow("too slow");
    expect(late).toEqual([]);
    answer(["one", "two"]);
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual([{ requests: [req(1, "a"), req(2, "b")], reply: ["one", "two"] }]);
  });

  it("reports no reply that arrived in time, nor a late one of the wrong shape", async () => {
    const late: unknown[] = [];
    const onLate = (_r: unknown, reply: unknown) => late.push(reply);
    const { run } = echoRunner();
    const inTime = createScriptBatcher(run, { timeoutMs: 1000, onLate });
    await expect(inTime.submit("", req(1, "a"))).resolves.toBe(1);
    let answer: (reply: unknown) => void = () => {};
    const slow = createScriptBatcher(() => new Promise((resolve) => (answer = resolve)), {
      timeoutMs: 10,
      onLate,
    });
    await expect(slow.submit("", req(2, "b"))).rejects.toThrow();
    answer(["x", "too many"]);
    await new Promise((r) => setImmediate(r));
    expect(late).toEqual([]);
  });

  it("answers within the deadline as usual, and a later batch gets a deadline of its own", async () => {
    const { run } = echoRunner();
    const batcher = createScriptBatcher(run, { timeoutMs: 20, timeoutMessage: "too slow" });
    await expect(batcher.submit("", req(1, "a"))).resolves.toBe(1);
    await new Promise((r) => setTimeout(r, 40));
    await expect(batcher.submit("", req(2, "b"))).resolves.toBe(2);
  });

  it("never sends a batch whose deadline passed before it went out, as its callers were already told it failed", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run, { timeoutMs: 10, timeoutMessage: "too slow" });
    // Submitted from a setImmediate callback, the flush waits for the next turn; the busy loop makes the batch due
    // by then, whichever of its flush and its deadline runs first.
    const { pending } = await new Promise<{ pending: Promise<unknown> }>((resolve) =>
      setImmediate(() => {
        const p = batcher.submit("", req(1, "a"));
        // Handled here, as it may reject before the test gets to await it.
        p.catch(() => {});
        const until = Date.now() + 30;
        while (Date.now() < until) {}
        resolve({ pending: p });
      }),
    );
    await expect(pending).rejects.toThrow("too slow");
    await new Promise((r) => setImmediate(r));
    expect(calls).toEqual([]);
  });
});
