import { describe, expect, it } from "vitest";
import { createLeasingLimiter } from "../../src/ratelimit/lease-limiter.js";
import { createMemoryLimiter } from "../../src/ratelimit/memory-limiter.js";
import { countingBackend, fakeClock, frozenList, LEASE_MS, SLOW_PERIOD } from "./lease-fixtures.js";
import { bucket, describeLimiterBehaviour } from "./limiter-behaviour.js";

// No Postgres or Redis: leases are taken from the memory limiter, which shares the Redis limiter's semantics.
// Generated sequences, bursts and instances are in lease-limiter-properties.test.ts.

describeLimiterBehaviour("leasing limiter over the memory limiter", () =>
  createLeasingLimiter(createMemoryLimiter(), { leaseMs: LEASE_MS }),
);

describe("leasing limiter", () => {
  it("charges a busy key in the backend once per lease, not per request", async () => {
    const clock = fakeClock();
    const { backend, seen } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, 60);
    // 1,000 requests a second for a second.
    for (let i = 0; i < 1000; i++) {
      expect((await leasing.consume({ tag: "w", buckets, cost: 1 })).allowed).toBe(true);
      clock.advance(1);
    }
    expect(seen.calls).toBeLessThan(50);
    await leasing.close();
  });

  it("charges a quiet key in the backend on every request", async () => {
    const clock = fakeClock();
    const { backend, seen } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, 60);
    // Ten a second: a lease would hold one request's worth, below the smallest lease.
    for (let i = 0; i < 100; i++) {
      await leasing.consume({ tag: "w", buckets, cost: 1 });
      clock.advance(100);
    }
    expect(seen).toMatchObject({ calls: 100, given: 0 });
    await leasing.close();
  });

  it("gives a lease back once it has been idle for a lease time past its own", async () => {
    const clock = fakeClock();
    const { backend, seen, remaining } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, SLOW_PERIOD);
    for (let i = 0; i < 200; i++) {
      await leasing.consume({ tag: "w", buckets, cost: 1 });
      clock.advance(1);
    }
    expect(await remaining({ tag: "w", buckets, cost: 0 })).toBeLessThan(1_000_000 - 200);
    // A lease past its time while requests come is renewed, not given back.
    expect(seen.given).toBe(0);
    leasing.sweep();
    expect(seen.given).toBe(0);
    // Idle for two lease times: past its own, and a whole one more.
    clock.advance(2 * LEASE_MS);
    leasing.sweep();
    expect(seen.given).toBeGreaterThan(0);
    expect(await remaining({ tag: "w", buckets, cost: 0 })).toBe(1_000_000 - 200);
  });

  it("keeps the lease's tokens when the backend fails, and rejects like the backend", async () => {
    const clock = fakeClock();
    const { backend, seen, remaining } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, SLOW_PERIOD);
    let admitted = 0;
    for (let i = 0; i < 200; i++) {
      if ((await leasing.consume({ tag: "w", buckets, cost: 1 })).allowed) admitted++;
      clock.advance(1);
    }
    seen.fail = true;
    // More than any lease holds, so it must reach the backend.
    await expect(leasing.consume({ tag: "w", buckets, cost: 100_000 })).rejects.toThrow("backend down");
    seen.fail = false;
    await leasing.close();
    expect(await remaining({ tag: "w", buckets, cost: 0 })).toBe(1_000_000 - admitted);
  });

  it("makes requests waiting for a grant share its failure rather than call the backend again", async () => {
    const clock = fakeClock();
    const { backend, seen } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, SLOW_PERIOD);
    const burst = () =>
      Promise.allSettled(Array.from({ length: 50 }, () => leasing.consume({ tag: "w", buckets, cost: 1 })));
    for (let i = 0; i < 20; i++) {
      await burst();
      clock.advance(1);
    }
    seen.fail = true;
    // Bursts are paid from the lease until one runs it out: that one's first request asks for the next lease, and
    // the rest of the burst waits for it.
    for (let round = 0; round < 1000; round++) {
      const callsBefore = seen.calls;
      const results = await burst();
      if (results.every((r) => r.status === "fulfilled")) {
        expect(seen.calls).toBe(callsBefore);
        clock.advance(1);
        continue;
      }
      expect(seen.calls - callsBefore).toBe(1);
      expect(results.at(-1)!.status).toBe("rejected");
      seen.fail = false;
      await leasing.close();
      return;
    }
    throw new Error("no burst ever ran the lease out");
  });

  it("passes a bucket list that can change straight to the backend", async () => {
    const clock = fakeClock();
    const { backend, seen } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = [bucket("k:minute", 1_000_000, 60)];
    for (let i = 0; i < 500; i++) {
      await leasing.consume({ tag: "w", buckets, cost: 1 });
      clock.advance(1);
    }
    expect(seen.calls).toBe(500);
    await leasing.close();
  });

  it("refuses a lease time that is not positive", () => {
    const { backend } = countingBackend(Date.now);
    for (const leaseMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY])
      expect(() => createLeasingLimiter(backend, { leaseMs })).toThrow(RangeError);
  });
});
