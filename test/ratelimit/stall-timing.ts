import fc from "fast-check";
import type { Redis } from "ioredis";
import type { RedisServerHandle } from "../support/redis-server.js";

/**
 * When Redis is stopped (SIGSTOP) and resumed (SIGCONT) around the deadline of a burst of in-flight calls, and how
 * the client is kept busy as it resumes. Shared by the limiter-level and the Check-level stall tests.
 */
export interface StallTiming {
  /** Negative: Redis is stopped this long before the first call; otherwise this long after it. */
  pauseAtMs: number;
  /** When Redis resumes, relative to the first call's deadline: just before it, at it, or just after it. */
  resumeFromDeadlineMs: number;
  /** Bursts the calls are fired in, a few milliseconds apart, so that they go out in several script calls. */
  waves: number;
  /**
   * How long the client's event loop is blocked right after the resume, as under load or a garbage collection:
   * Redis then answers while the client's own deadline comes due, and which of the two it sees first varies.
   */
  busyMs: number;
}

/**
 * Stall timings around a deadline, in a bounded range so that every run is short. `lagMs` is how long a call takes
 * to reach the code that arms the deadline (a Check crosses a socket first): the resume times are shifted by it.
 */
export function stallTimings(lagMs = 0): fc.Arbitrary<StallTiming> {
  return fc.record({
    pauseAtMs: fc.integer({ min: -10, max: 6 }),
    resumeFromDeadlineMs: fc.integer({ min: lagMs - 25, max: lagMs + 25 }),
    waves: fc.integer({ min: 1, max: 3 }),
    busyMs: fc.constantFrom(0, 0, 4, 8, 12, 16),
  });
}

/** The named cases, run first: stopped before the calls, resumed just before, at and just after the deadline. */
export function stallExamples(lagMs = 0): [StallTiming][] {
  return NAMED.map((timing) => [{ ...timing, resumeFromDeadlineMs: timing.resumeFromDeadlineMs + lagMs }]);
}

const NAMED: StallTiming[] = [
  { pauseAtMs: -5, resumeFromDeadlineMs: -8, waves: 1, busyMs: 0 },
  { pauseAtMs: -5, resumeFromDeadlineMs: -3, waves: 2, busyMs: 4 },
  { pauseAtMs: -5, resumeFromDeadlineMs: 0, waves: 1, busyMs: 0 },
  { pauseAtMs: -5, resumeFromDeadlineMs: 0, waves: 3, busyMs: 8 },
  { pauseAtMs: -5, resumeFromDeadlineMs: 4, waves: 1, busyMs: 2 },
  { pauseAtMs: -5, resumeFromDeadlineMs: 12, waves: 2, busyMs: 0 },
  { pauseAtMs: 1, resumeFromDeadlineMs: -2, waves: 2, busyMs: 4 },
  // Redis answers in time, but the client is blocked until just past its deadline, which then fires before the
  // reply is read (a deadline more than a few milliseconds late waits for the replies; see deadline.ts).
  { pauseAtMs: -5, resumeFromDeadlineMs: -10, waves: 1, busyMs: 12 },
  { pauseAtMs: -5, resumeFromDeadlineMs: -14, waves: 2, busyMs: 16 },
];

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Fires `waves` bursts of calls (`fire` starts one burst and returns its outcomes) while Redis is stopped and
 * resumed as `timing` says, around a deadline `deadlineMs` after the first call. Redis always runs again afterwards.
 */
export async function stallAround<T>(
  redis: RedisServerHandle,
  deadlineMs: number,
  timing: StallTiming,
  fire: () => Promise<T>[],
): Promise<T[]> {
  let paused = false;
  let resumed = false;
  const pause = () => {
    if (resumed) return;
    paused = true;
    redis.pause();
  };
  // Resumed from the check phase, then blocked: Node checks which timers are due against the time at the start of
  // each turn, so a client blocked here, rather than in the timer, sees its deadline before Redis's replies.
  const resume = () =>
    setImmediate(() => {
      if (resumed) return;
      resumed = true;
      if (paused) redis.resume();
      const until = Date.now() + timing.busyMs;
      while (Date.now() < until) {
        // Busy, as a loaded client would be.
      }
    });
  const timers: NodeJS.Timeout[] = [];
  try {
    if (timing.pauseAtMs < 0) {
      pause();
      await sleep(-timing.pauseAtMs);
    } else {
      timers.push(setTimeout(pause, timing.pauseAtMs));
    }
    timers.push(setTimeout(resume, deadlineMs + timing.resumeFromDeadlineMs));
    const outcomes: Promise<T>[] = [];
    for (let wave = 0; wave < timing.waves; wave++) {
      if (wave > 0) await sleep(3);
      outcomes.push(...fire());
    }
    return await Promise.all(outcomes);
  } finally {
    for (const timer of timers) clearTimeout(timer);
    resumed = true;
    if (paused) redis.resume();
  }
}

/**
 * Tokens taken from a bucket, read from Redis: its capacity less what it holds (a missing bucket is full). The
 * buckets used here refill so slowly that the refill during a test is far below the tolerance asserted.
 */
export async function consumedFrom(admin: Redis, key: string, capacity: number): Promise<number> {
  const stored = await admin.hget(key, "t");
  return stored === null ? 0 : capacity - Number(stored);
}

/**
 * Waits until everything the client sent before it returns has run in Redis, refunds included: `call` goes to Redis
 * over the client's connection, which answers in order, and is retried (bounded) until it succeeds. The first
 * success comes after every late reply, so the refunds those replies started have been sent by then; the second
 * was sent after them, so they have run by the time it succeeds.
 */
export async function drainConnection(call: () => Promise<boolean>): Promise<void> {
  for (let round = 0; round < 2; round++) {
    for (let attempt = 1; !(await call().catch(() => false)); attempt++) {
      if (attempt >= 100) throw new Error("Redis never answered in time again after the stall");
      await sleep(50);
    }
  }
}
