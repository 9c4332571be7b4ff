import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import * as deadline from "../../src/runtime/deadline.js";

describe("deadline.after", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("runs each callback once its delay has passed, in the order they were armed, and not before", () => {
    const fired: string[] = [];
    deadline.after(40, () => fired.push("a"));
    vi.advanceTimersByTime(5);
    deadline.after(40, () => fired.push("b"));
    deadline.after(40, () => fired.push("c"));
    vi.advanceTimersByTime(34);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(["a"]);
    vi.advanceTimersByTime(5);
    expect(fired).toEqual(["a", "b", "c"]);
  });

  it("never runs a cancelled callback, and cancelling one leaves the others of its millisecond due", () => {
    const fired: number[] = [];
    const deadlines = [1, 2, 3, 4].map((n) => deadline.after(41, () => fired.push(n)));
    deadlines[1]?.cancel();
    deadlines[3]?.cancel();
    deadlines[3]?.cancel();
    vi.advanceTimersByTime(41);
    expect(fired).toEqual([1, 3]);
    deadlines[0]?.cancel();
    vi.advanceTimersByTime(100);
    expect(fired).toEqual([1, 3]);
  });

  it("keeps working across many milliseconds of steady arming and cancelling", () => {
    let fired = 0;
    let kept = 0;
    for (let ms = 0; ms < 3000; ms++) {
      for (let i = 0; i < 5; i++) {
        const d = deadline.after(42, () => fired++);
        if (i > 0) d.cancel();
        else kept++;
      }
      vi.advanceTimersByTime(1);
    }
    vi.advanceTimersByTime(42);
    expect(fired).toBe(kept);
  });

  it("runs what came due while the process was stalled in the turn it wakes", () => {
    const fired: string[] = [];
    deadline.after(43, () => fired.push("first"));
    vi.advanceTimersByTime(10);
    deadline.after(43, () => fired.push("second"));
    // The clock jumps past both deadlines before the first timer gets to run: it runs late, and takes both
    // once that turn's I/O has been read.
    vi.setSystemTime(Date.now() + 500);
    vi.advanceTimersByTime(33);
    vi.advanceTimersToNextTimer();
    expect(fired).toEqual(["first", "second"]);
  });

  it("after a stall, lets answers read in the same turn cancel their deadlines before any expires", () => {
    const fired: string[] = [];
    const answered = deadline.after(45, () => fired.push("answered"));
    deadline.after(45, () => fired.push("unanswered"));
    // Blocked past the due time: the timer runs late, first in its turn, ahead of the sockets' pending answers.
    vi.setSystemTime(Date.now() + 200);
    vi.advanceTimersToNextTimer();
    expect(fired).toEqual([]);
    // The poll phase reads one answer, which cancels its deadline; the expiry then runs after it.
    answered.cancel();
    vi.advanceTimersToNextTimer();
    expect(fired).toEqual(["unanswered"]);
  });

  it("lets a callback arm a new deadline with the same delay", () => {
    const fired: number[] = [];
    deadline.after(44, () => {
      fired.push(1);
      deadline.after(44, () => fired.push(2));
    });
    vi.advanceTimersByTime(44);
    expect(fired).toEqual([1]);
    vi.advanceTimersByTime(44);
    expect(fired).toEqual([1, 2]);
  });
});

describe("deadline.settleWithin", () => {
  const never = new Promise<string>(() => {});

  it("settles with the promise when it comes first, and ignores the deadline after", async () => {
    let timedOut = false;
    const value = await deadline.settleWithin(Promise.resolve("in time"), 20, () => {
      timedOut = true;
      return "late";
    });
    await new Promise((r) => setTimeout(r, 40));
    expect(value).toBe("in time");
    expect(timedOut).toBe(false);
  });

  it("settles with onTimeout's value once the time is up, or rejects with what it throws", async () => {
    await expect(deadline.settleWithin(never, 10, () => "late")).resolves.toBe("late");
    await expect(
      deadline.settleWithin(never, 10, () => {
        throw new Error("timed out");
      }),
    ).rejects.toThrow("timed out");
  });

  it("passes a rejection through, or maps it with onError when given", async () => {
    const failing = () => Promise.reject(new Error("boom"));
    await expect(deadline.settleWithin(failing(), 1000, () => "late")).rejects.toThrow("boom");
    await expect(
      deadline.settleWithin(
        failing(),
        1000,
        () => "late",
        (e) => `mapped ${(e as Error).message}`,
      ),
    ).resolves.toBe("mapped boom");
  });
});
