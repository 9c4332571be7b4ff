import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createLeasingLimiter } from "../../src/ratelimit/lease-limiter.js";
import { createMemoryLimiter } from "../../src/ratelimit/memory-limiter.js";
import { countingBackend, fakeClock, frozenList, LEASE_MS, SLOW_PERIOD } from "./lease-fixtures.js";

// No Postgres or Redis: generated request sequences, concurrent bursts and several instances over one memory
// limiter, which shares the Redis limiter's semantics.

const step = fc.record({ cost: fc.integer({ min: 0, max: 40 }), advanceMs: fc.integer({ min: 0, max: 30 }) });
// Capacities from where leases start (16 tokens at 1%) upwards, with periods whose refill a test never sees.
const leasedCapacity = fc.integer({ min: 1600, max: 20_000 });

describe("leasing limiter, generated", () => {
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
});
