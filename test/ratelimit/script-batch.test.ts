import { describe, expect, it } from "vitest";
import { createScriptBatcher } from "../../src/ratelimit/script-batch.js";

type Call = { keys: string[]; args: (string | number)[] };

/** A runner that records each call and answers every request with its own first argument. */
function echoRunner() {
  const calls: Call[] = [];
  const run = async (keys: string[], args: (string | number)[]) => {
    calls.push({ keys, args });
    const replies: unknown[] = [];
    // Each request here sends two arguments: an id, then its key count.
    for (let i = 1; i < args.length; i += 2) replies.push(args[i]);
    return replies;
  };
  return { run, calls };
}

describe("script batcher", () => {
  it("sends the requests of one event-loop turn as one call and answers each with its own part", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run);
    const replies = await Promise.all([
      batcher.submit("", ["k1"], ["a", 1]),
      batcher.submit("", ["k2", "k3"], ["b", 2]),
      batcher.submit("", ["k4"], ["c", 1]),
    ]);
    expect(replies).toEqual(["a", "b", "c"]);
    expect(calls).toEqual([{ keys: ["k1", "k2", "k3", "k4"], args: [3, "a", 1, "b", 2, "c", 1] }]);
  });

  it("never puts requests of different groups in one call", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run);
    await Promise.all([
      batcher.submit("{w1}", ["a"], ["x", 1]),
      batcher.submit("{w2}", ["b"], ["y", 1]),
      batcher.submit("{w1}", ["c"], ["z", 1]),
    ]);
    expect(calls.map((c) => c.keys)).toEqual([["a", "c"], ["b"]]);
  });

  it("sends a full batch at once and starts a new one", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run, { maxRequests: 2 });
    const pending = [1, 2, 3].map((i) => batcher.submit("", [`k${i}`], [i, 1]));
    // The first two went out synchronously; the third waits for the end of the turn.
    expect(calls).toHaveLength(1);
    expect(await Promise.all(pending)).toEqual([1, 2, 3]);
    expect(calls.map((c) => c.args[0])).toEqual([2, 1]);
  });

  it("fails every request of a call that fails, and only those", async () => {
    let first = true;
    const batcher = createScriptBatcher(async (_keys, args) => {
      if (first) {
        first = false;
        throw new Error("connection lost");
      }
      return [args[1]];
    });
    const failed = [batcher.submit("", ["a"], [1, 1]), batcher.submit("", ["b"], [2, 1])];
    await expect(Promise.all(failed)).rejects.toThrow("connection lost");
    await expect(failed[1]).rejects.toThrow("connection lost");
    await expect(batcher.submit("", ["c"], [3, 1])).resolves.toBe(3);
  });

  it("rejects the requests of a call whose runner throws instead of rejecting", async () => {
    const batcher = createScriptBatcher(() => {
      throw new Error("client closed");
    });
    const pending = [batcher.submit("", ["a"], [1, 1]), batcher.submit("", ["b"], [2, 1])];
    for (const p of pending) await expect(p).rejects.toThrow("client closed");
  });

  it("rejects every request when the reply does not have one part per request", async () => {
    const batcher = createScriptBatcher(async () => ["only one"]);
    const pending = [batcher.submit("", ["a"], [1, 1]), batcher.submit("", ["b"], [2, 1])];
    for (const p of pending) await expect(p).rejects.toThrow(/malformed script reply/);
  });

  it("rejects every request of a call still unanswered at the deadline, and a late reply changes nothing", async () => {
    let answer: (reply: unknown) => void = () => {};
    const batcher = createScriptBatcher(() => new Promise((resolve) => (answer = resolve)), {
      timeoutMs: 20,
      timeoutMessage: "too slow",
    });
    const pending = [batcher.submit("", ["a"], [1, 1]), batcher.submit("", ["b"], [2, 1])];
    for (const p of pending) await expect(p).rejects.toThrow("too slow");
    answer([1, 2]);
    for (const p of pending) await expect(p).rejects.toThrow("too slow");
  });

  it("answers within the deadline as usual, and a later batch gets a deadline of its own", async () => {
    const { run } = echoRunner();
    const batcher = createScriptBatcher(run, { timeoutMs: 20, timeoutMessage: "too slow" });
    await expect(batcher.submit("", ["a"], [1, 1])).resolves.toBe(1);
    await new Promise((r) => setTimeout(r, 40));
    await expect(batcher.submit("", ["b"], [2, 1])).resolves.toBe(2);
  });

  it("never sends a batch whose deadline passed before it went out, as its callers were already told it failed", async () => {
    const { run, calls } = echoRunner();
    const batcher = createScriptBatcher(run, { timeoutMs: 10, timeoutMessage: "too slow" });
    // Submitted from a setImmediate callback, the flush waits for the next turn, after that turn's timers; the
    // busy loop makes the deadline due by then.
    const { pending } = await new Promise<{ pending: Promise<unknown> }>((resolve) =>
      setImmediate(() => {
        const p = batcher.submit("", ["a"], [1, 1]);
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
