/** Unit test (no Postgres, no Redis): how the primary paces the restarts of a worker that keeps exiting. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { asToPrimary, asToWorker } from "../../src/workers/messages.js";
import { DEFAULT_RESTART_POLICY, nextCrashCount, restartDelayMs } from "../../src/workers/restart-backoff.js";

describe("worker restart backoff", () => {
  it("doubles from half a second and stops growing at half a minute", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((n) => restartDelayMs(n))).toEqual([
      500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000,
    ]);
  });

  it("never waits less than the base nor more than the maximum, and never less after another crash", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000 }), (crashes) => {
        const delay = restartDelayMs(crashes);
        expect(delay).toBeGreaterThanOrEqual(DEFAULT_RESTART_POLICY.baseMs);
        expect(delay).toBeLessThanOrEqual(DEFAULT_RESTART_POLICY.maxMs);
        expect(restartDelayMs(crashes + 1)).toBeGreaterThanOrEqual(delay);
      }),
    );
  });

  it("counts crashes of a worker that never served or served briefly, and forgives one that served a minute", () => {
    expect(nextCrashCount(3, undefined)).toBe(4);
    expect(nextCrashCount(3, 59_999)).toBe(4);
    expect(nextCrashCount(6, 60_000)).toBe(1);
  });
});

describe("primary-worker messages", () => {
  it("accept only well-formed messages and drop every other value", () => {
    expect(asToWorker({ type: "start", slot: 1, serviceUrl: "postgres://x", pepper: "p" })).toEqual({
      type: "start",
      slot: 1,
      serviceUrl: "postgres://x",
      pepper: "p",
    });
    expect(asToWorker({ type: "drain", extra: 1 })).toEqual({ type: "drain" });
    expect(asToPrimary({ type: "listening", httpPort: 1, grpcPort: 2 })).toEqual({
      type: "listening",
      httpPort: 1,
      grpcPort: 2,
    });
    fc.assert(
      fc.property(fc.anything(), (value) => {
        const worker = asToWorker(value);
        if (worker) expect(["start", "drain", "close"]).toContain(worker.type);
        if (worker?.type === "start") expect(typeof worker.pepper).toBe("string");
        const primary = asToPrimary(value);
        if (primary) expect(["hello", "listening"]).toContain(primary.type);
      }),
    );
    expect(asToWorker({ type: "start", slot: "1", serviceUrl: "x", pepper: "p" })).toBeUndefined();
    expect(asToPrimary({ type: "listening", httpPort: "1", grpcPort: 2 })).toBeUndefined();
  });
});
