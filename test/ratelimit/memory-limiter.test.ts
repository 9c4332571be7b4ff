import { describe, expect, it } from "vitest";
import { createMemoryLimiter } from "../../src/ratelimit/memory-limiter.js";
import { bucket, describeLimiterBehaviour } from "./limiter-behaviour.js";

describeLimiterBehaviour("memory limiter", () => createMemoryLimiter());

describe("memory limiter", () => {
  function fakeClock(startMs = 1_700_000_000_000) {
    let nowMs = startMs;
    return {
      now: () => nowMs,
      advance: (ms: number) => {
        nowMs += ms;
      },
    };
  }

  it("refills exactly with the injected clock", async () => {
    const clock = fakeClock();
    const limiter = createMemoryLimiter({ now: clock.now });
    const b = bucket("exact", 10, 10);
    await limiter.consume({ tag: "w", buckets: [b], cost: 10 });
    clock.advance(2500);
    const result = await limiter.consume({ tag: "w", buckets: [b], cost: 1 });
    // 2.5 tokens came back, one was taken: 1.5 left, full again 8.5 s later.
    expect(result.statuses[0]).toMatchObject({ remaining: 1, retryAfterSeconds: 0 });
    expect(result.statuses[0]?.resetAt).toBe(Math.ceil((clock.now() + 8500) / 1000));
    const denied = await limiter.consume({ tag: "w", buckets: [b], cost: 3 });
    expect(denied.statuses[0]).toMatchObject({ remaining: 1, retryAfterSeconds: 2 });
  });

  it("drops buckets once they have refilled, keeping those still refilling", async () => {
    const clock = fakeClock();
    const limiter = createMemoryLimiter({ now: clock.now, sweepIntervalMs: 1000 });
    const fast = bucket("fast", 10, 1);
    const slow = bucket("slow", 10, 3600);
    for (let i = 0; i < 50; i++) await limiter.consume({ tag: `w${i}`, buckets: [fast], cost: 1 });
    await limiter.consume({ tag: "kept", buckets: [slow], cost: 1 });
    expect(limiter.size).toBe(51);
    // Well past refill plus the expiry margin; the next call sweeps.
    clock.advance(5000);
    await limiter.consume({ tag: "other", buckets: [], cost: 1 });
    await limiter.consume({ tag: "kept", buckets: [slow], cost: 1 });
    expect(limiter.size).toBe(1);
    await limiter.close();
    expect(limiter.size).toBe(0);
  });

  it("treats a bucket past its expiry as full even before the sweep runs", async () => {
    const clock = fakeClock();
    const limiter = createMemoryLimiter({ now: clock.now, sweepIntervalMs: 3_600_000 });
    const b = bucket("b", 2, 1);
    await limiter.consume({ tag: "w", buckets: [b], cost: 2 });
    clock.advance(10_000);
    expect((await limiter.consume({ tag: "w", buckets: [b], cost: 1 })).statuses[0]?.remaining).toBe(1);
  });
});
