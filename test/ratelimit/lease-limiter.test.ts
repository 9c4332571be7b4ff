import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Bucket, LimitRequest } from "../../src/domain/ports.js";
import { createLeasingLimiter, type LeaseBackend } from "../../src/ratelimit/lease-limiter.js";
import { createMemoryLimiter } from "../../src/ratelimit/memory-limiter.js";
import { bucket, describeLimiterBehaviour } from "./limiter-behaviour.js";

// No Postgres or Redis: leases are taken from the memory limiter, which shares the Redis limiter's semantics.

const LEASE_MS = 100;

describeLimiterBehaviour("leasing limiter over the memory limiter", () =>
  createLeasingLimiter(createMemoryLimiter(), { leaseMs: LEASE_MS }),
);

function fakeClock() {
  let nowMs = 1_700_000_000_000;
  return {
    now: () => nowMs,
    advance: (ms: number) => {
      nowMs += ms;
    },
  };
}

/** A frozen one-bucket list, as the key cache hands the limiter. */
function frozenList(capacity: number, periodSeconds: number): readonly Bucket[] {
  const b = bucket("k:minute", capacity, periodSeconds);
  Object.freeze(b.limit);
  return Object.freeze([Object.freeze(b)]);
}

/** The memory limiter, counting the calls and tokens that reach it. */
function countingBackend(now: () => number) {
  const inner = createMemoryLimiter({ now });
  const seen = { calls: 0, given: 0, fail: false };
  const backend: LeaseBackend = {
    consume(request) {
      seen.calls++;
      if (seen.fail) return Promise.reject(new Error("backend down"));
      return inner.consume(request);
    },
    giveBack(request, amount) {
      seen.given += amount;
      inner.giveBack(request, amount);
    },
    close: () => inner.close(),
  };
  return {
    backend,
    seen,
    remaining: async (request: LimitRequest) =>
      (await inner.consume({ ...request, cost: 0 })).statuses[0]!.remaining,
  };
}

const step = fc.record({ cost: fc.integer({ min: 0, max: 40 }), advanceMs: fc.integer({ min: 0, max: 30 }) });
// Capacities from where leases start (16 tokens at 1%) upwards, with periods whose refill a test never sees.
const leasedCapacity = fc.integer({ min: 1600, max: 20_000 });
const SLOW_PERIOD = 1e9;

describe("leasing limiter", () => {
  it("decides every request of one instance exactly as a single bucket does, remaining included", async () => {
    await fc.assert(
      fc.asyncProperty(
        leasedCapacity,
        fc.array(step, { minLength: 1, maxLength: 300 }),
        async (capacity, steps) => {
          const clock = fakeClock();
          const bare = createMemoryLimiter({ now: clock.now });
          const { backend } = countingBackend(clock.now);
          const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
          const buckets = frozenList(capacity, SLOW_PERIOD);
          for (const { cost, advanceMs } of steps) {
            const request = { tag: "w", buckets, cost };
            const [want, got] = await Promise.all([bare.consume(request), leasing.consume(request)]);
            expect(got.allowed).toBe(want.allowed);
            expect(got.statuses[0]!.remaining).toBe(want.statuses[0]!.remaining);
            clock.advance(advanceMs);
          }
          await leasing.close();
        },
      ),
      { numRuns: 200 },
    );
  });

  it("admits exactly the capacity's worth of concurrent unit requests on one instance", async () => {
    await fc.assert(
      fc.asyncProperty(
        // Small enough that the bursts run the bucket dry, where a lease and the backend race.
        fc.integer({ min: 1600, max: 4000 }),
        fc.array(
          fc.record({
            size: fc.integer({ min: 1, max: 64 }),
            advanceMs: fc.constantFrom(0, 1, 5, 10, 20, 150),
          }),
          { minLength: 40, maxLength: 200 },
        ),
        async (capacity, bursts) => {
          const clock = fakeClock();
          const { backend } = countingBackend(clock.now);
          const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
          const buckets = frozenList(capacity, SLOW_PERIOD);
          let requested = 0;
          let admitted = 0;
          for (const { size, advanceMs } of bursts) {
            const results = await Promise.all(
              Array.from({ length: size }, () => leasing.consume({ tag: "w", buckets, cost: 1 })),
            );
            requested += size;
            admitted += results.filter((r) => r.allowed).length;
            // Every refusal comes once nothing is left anywhere.
            expect(admitted).toBe(Math.min(requested, capacity));
            clock.advance(advanceMs);
            leasing.sweep();
          }
          await leasing.close();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("never admits more than the capacity across instances, and loses no token once they close", async () => {
    const burst = fc.array(fc.record({ instance: fc.nat(2), cost: fc.integer({ min: 1, max: 40 }) }), {
      minLength: 1,
      maxLength: 12,
    });
    await fc.assert(
      fc.asyncProperty(
        leasedCapacity,
        fc.array(fc.record({ burst, advanceMs: fc.integer({ min: 0, max: 150 }) }), { maxLength: 60 }),
        fc.boolean(),
        async (capacity, rounds, sweepEachRound) => {
          const clock = fakeClock();
          const { backend, remaining } = countingBackend(clock.now);
          const instances = [0, 1, 2].map(() =>
            createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now }),
          );
          const buckets = frozenList(capacity, SLOW_PERIOD);
          let admitted = 0;
          for (const { burst: calls, advanceMs } of rounds) {
            // Concurrent, as Checks of one socket read are: grants and local spends interleave.
            const results = await Promise.all(
              calls.map(({ instance, cost }) => instances[instance]!.consume({ tag: "w", buckets, cost })),
            );
            calls.forEach(({ cost }, i) => {
              if (results[i]!.allowed) admitted += cost;
            });
            clock.advance(advanceMs);
            if (sweepEachRound) for (const instance of instances) instance.sweep();
          }
          expect(admitted).toBeLessThanOrEqual(capacity);
          for (const instance of instances) await instance.close();
          expect(await remaining({ tag: "w", buckets, cost: 0 })).toBe(capacity - admitted);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("admits at most one lease per instance beyond a refilling bucket's own bound", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1600, max: 5000 }),
        fc.array(
          fc.record({ instance: fc.nat(1), cost: fc.integer({ min: 1, max: 20 }), advanceMs: fc.nat(40) }),
          {
            maxLength: 400,
          },
        ),
        async (capacity, steps) => {
          const clock = fakeClock();
          // The fastest refill leases are taken from: one lease (1% of capacity) refills in exactly leaseMs.
          const periodSeconds = (LEASE_MS * 100) / 1000;
          const { backend } = countingBackend(clock.now);
          const instances = [0, 1].map(() =>
            createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now }),
          );
          const buckets = frozenList(capacity, periodSeconds);
          const started = clock.now();
          let admitted = 0;
          for (const { instance, cost, advanceMs } of steps) {
            if ((await instances[instance]!.consume({ tag: "w", buckets, cost })).allowed) admitted += cost;
            clock.advance(advanceMs);
          }
          const refill = ((clock.now() - started) / 1000) * (capacity / periodSeconds);
          const oneLease = Math.floor(capacity * 0.01);
          expect(admitted).toBeLessThanOrEqual(capacity + refill + instances.length * oneLease);
          for (const instance of instances) await instance.close();
        },
      ),
      { numRuns: 150 },
    );
  });

  it("charges the backend on every request of a bucket too small or refilling too fast to lease from", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ capacity: fc.integer({ min: 1, max: 1599 }), periodSeconds: fc.constant(SLOW_PERIOD) }),
          // 1% of it refills in under leaseMs.
          fc.record({
            capacity: fc.integer({ min: 1600, max: 1e6 }),
            periodSeconds: fc.double({ min: 0.01, max: 9.9, noNaN: true }),
          }),
        ),
        fc.array(step, { minLength: 1, maxLength: 100 }),
        async ({ capacity, periodSeconds }, steps) => {
          const clock = fakeClock();
          const { backend, seen } = countingBackend(clock.now);
          const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
          const buckets = frozenList(capacity, periodSeconds);
          for (const { cost, advanceMs } of steps) {
            await leasing.consume({ tag: "w", buckets, cost });
            clock.advance(advanceMs);
          }
          expect(seen.calls).toBe(steps.length);
          expect(seen.given).toBe(0);
          await leasing.close();
        },
      ),
      { numRuns: 200 },
    );
  });

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

  it("gives an idle lease back once it expires", async () => {
    const clock = fakeClock();
    const { backend, seen, remaining } = countingBackend(clock.now);
    const leasing = createLeasingLimiter(backend, { leaseMs: LEASE_MS, now: clock.now });
    const buckets = frozenList(1_000_000, SLOW_PERIOD);
    for (let i = 0; i < 200; i++) {
      await leasing.consume({ tag: "w", buckets, cost: 1 });
      clock.advance(1);
    }
    expect(await remaining({ tag: "w", buckets, cost: 0 })).toBeLessThan(1_000_000 - 200);
    // Leases that ran out of time during the loop were given back as the next request came.
    const givenBefore = seen.given;
    leasing.sweep();
    expect(seen.given).toBe(givenBefore);
    clock.advance(LEASE_MS);
    leasing.sweep();
    expect(seen.given).toBeGreaterThan(givenBefore);
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
    for (let i = 0; i < 200; i++) {
      await leasing.consume({ tag: "w", buckets, cost: 1 });
      clock.advance(1);
    }
    // The lease has run out of time: the next request asks for a new one, and the rest of the burst waits for it.
    clock.advance(LEASE_MS);
    seen.fail = true;
    const callsBefore = seen.calls;
    const burst = await Promise.allSettled(
      Array.from({ length: 50 }, () => leasing.consume({ tag: "w", buckets, cost: 1 })),
    );
    expect(burst.every((r) => r.status === "rejected")).toBe(true);
    expect(seen.calls - callsBefore).toBe(1);
    await leasing.close();
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
