import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ClockOffset } from "../../src/ratelimit/clock-offset.js";

describe("ClockOffset", () => {
  it("assumes synchronised clocks until a reply has been seen", () => {
    expect(new ClockOffset().estimate()).toBe(0);
  });

  it("keeps the tightest lower bound seen: Redis's time minus when the reply was read, less a millisecond", () => {
    const clock = new ClockOffset(1000);
    clock.observe(1012, 1000);
    clock.observe(1030, 1010);
    clock.observe(1025, 1020);
    expect(clock.estimate()).toBe(19);
  });

  it("never overshoots the true offset, however late each reply is read and however the clocks truncate", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -5000, max: 5000, noNaN: true }),
        fc.array(
          fc.record({
            ranAfterMs: fc.double({ min: 0, max: 50, noNaN: true }),
            readAfterMs: fc.double({ min: 0, max: 50, noNaN: true }),
          }),
          { minLength: 1, maxLength: 30 },
        ),
        (trueOffsetMs, replies) => {
          const clock = new ClockOffset(1000);
          let at = 1_700_000_000_000.25;
          for (const { ranAfterMs, readAfterMs } of replies) {
            // The script runs at local time `at + ranAfterMs` (Redis's clock reads that plus the offset, to the
            // microsecond), and its reply is read later, by Date.now(), which drops the fraction of a millisecond.
            const ranAt = at + ranAfterMs;
            const redisNowMs = Math.floor((ranAt + trueOffsetMs) * 1000) / 1000;
            clock.observe(redisNowMs, Math.floor(ranAt + readAfterMs));
            expect(clock.estimate()).toBeLessThanOrEqual(trueOffsetMs + 1e-6);
            at = ranAt + readAfterMs;
          }
          // A reply read in the millisecond its script ran pins the offset to within one.
          clock.observe(Math.floor((at + trueOffsetMs) * 1000) / 1000, Math.floor(at));
          expect(clock.estimate()).toBeGreaterThan(trueOffsetMs - 1.01);
        },
      ),
      { numRuns: 500 },
    );
  });

  it("forgets bounds after two windows so drift is followed", () => {
    const clock = new ClockOffset(1000);
    clock.observe(51, 0);
    clock.observe(1510, 1500);
    expect(clock.estimate()).toBe(50);
    clock.observe(2611, 2600);
    expect(clock.estimate()).toBe(10);
    clock.observe(10_006, 10_000);
    expect(clock.estimate()).toBe(5);
  });
});
