import { describe, expect, it } from "vitest";
import { ClockOffset } from "../../src/ratelimit/clock-offset.js";

describe("ClockOffset", () => {
  it("assumes synchronised clocks until a reply has been seen", () => {
    expect(new ClockOffset().estimate()).toBe(0);
  });

  it("keeps the tightest upper bound seen", () => {
    const clock = new ClockOffset(1000);
    clock.observe(12, 0);
    clock.observe(7, 10);
    clock.observe(30, 20);
    expect(clock.estimate()).toBe(7);
  });

  it("lets a premature stale refusal lift the estimate above other nodes' bounds", () => {
    const clock = new ClockOffset(1000);
    clock.observe(2, 0);
    clock.raise(40, 5);
    clock.observe(1, 10);
    expect(clock.estimate()).toBe(40);
  });

  it("forgets bounds after two windows so drift is followed", () => {
    const clock = new ClockOffset(1000);
    clock.observe(5, 0);
    clock.raise(50, 0);
    clock.observe(9, 1500);
    expect(clock.estimate()).toBe(50);
    clock.observe(11, 2600);
    expect(clock.estimate()).toBe(9);
    clock.observe(20, 10_000);
    expect(clock.estimate()).toBe(20);
  });
});
