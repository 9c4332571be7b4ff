/** keymesh's readiness decision (src/health.ts) over a database probe the test controls; no Postgres, no Redis. */
import { describe, expect, it } from "vitest";
import { createHealth, HEALTH_SERVICES } from "../src/health.js";
import { type WatchedStatus, watchHealth } from "../src/transport/health-source.js";

const ALL = ["", HEALTH_SERVICES.authorization, HEALTH_SERVICES.verify, HEALTH_SERVICES.admin];

function setup(options: { cachedKeys?: number; minCachedKeys?: number; maxAgeMs?: number } = {}) {
  const state = { databaseUp: true, cachedKeys: options.cachedKeys ?? 0, probes: 0 };
  let hang: Promise<void> | undefined;
  const health = createHealth({
    probeDatabase: async () => {
      state.probes++;
      await hang;
      return state.databaseUp;
    },
    cachedKeys: () => state.cachedKeys,
    minCachedKeys: options.minCachedKeys ?? 1,
    maxAgeMs: options.maxAgeMs ?? 10_000,
  });
  const statuses = () => Object.fromEntries(ALL.map((name) => [name, health.status(name)]));
  return {
    health,
    state,
    statuses,
    holdProbes() {
      let release!: () => void;
      hang = new Promise((resolve) => (release = resolve));
      return () => {
        hang = undefined;
        release();
      };
    },
  };
}

const every = (status: string) => Object.fromEntries(ALL.map((name) => [name, status]));

describe("readiness", () => {
  it("is NOT_SERVING on every name until the listeners are up, then SERVING with the database", async () => {
    const { health, statuses } = setup();
    await health.refresh();
    expect(statuses()).toEqual(every("NOT_SERVING"));
    expect(health.reason()).toBe("starting");
    health.listening();
    await health.refresh();
    expect(statuses()).toEqual(every("SERVING"));
    expect(health.reason()).toBe("ready");
  });

  it("without the database and with a cold cache, nothing is ready; with a warm cache only KeyAdmin is not", async () => {
    const cold = setup({ cachedKeys: 0, maxAgeMs: 0 });
    cold.health.listening();
    cold.state.databaseUp = false;
    await cold.health.refresh();
    expect(cold.statuses()).toEqual(every("NOT_SERVING"));
    expect(cold.health.reason()).toMatch(/database is unreachable and the key cache is cold/);

    const warm = setup({ cachedKeys: 3, minCachedKeys: 3, maxAgeMs: 0 });
    warm.health.listening();
    warm.state.databaseUp = false;
    await warm.health.refresh();
    expect(warm.statuses()).toEqual({ ...every("SERVING"), [HEALTH_SERVICES.admin]: "NOT_SERVING" });
    expect(warm.health.reason()).toMatch(/warm key cache/);
    // One key short of the threshold is cold.
    warm.state.cachedKeys = 2;
    await warm.health.refresh();
    expect(warm.statuses()).toEqual(every("NOT_SERVING"));
  });

  it("a threshold of 0 never counts the cache as warm", async () => {
    const { health, state, statuses } = setup({ cachedKeys: 1_000, minCachedKeys: 0, maxAgeMs: 0 });
    health.listening();
    state.databaseUp = false;
    await health.refresh();
    expect(statuses()).toEqual(every("NOT_SERVING"));
  });

  it("probes at most once per max age, and concurrent refreshes share one probe", async () => {
    const { health, state, holdProbes } = setup({ maxAgeMs: 60_000 });
    health.listening();
    const release = holdProbes();
    const waiting = Promise.all([health.refresh(), health.refresh(), health.refresh()]);
    release();
    await waiting;
    const afterFirst = state.probes;
    expect(afterFirst).toBe(1);
    await health.refresh();
    expect(state.probes).toBe(afterFirst);
  });

  it("on drain, every name turns NOT_SERVING at once and watchers hear it before anything else", async () => {
    const { health, statuses } = setup();
    health.listening();
    await health.refresh();
    const seen: WatchedStatus[] = [];
    let ended = false;
    const cancel = watchHealth(
      health,
      HEALTH_SERVICES.authorization,
      (status) => seen.push(status),
      () => {
        ended = true;
      },
    );
    await expect.poll(() => seen).toEqual(["SERVING"]);
    health.drain();
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    expect(statuses()).toEqual(every("NOT_SERVING"));
    expect(health.reason()).toMatch(/draining/);
    // A database that answers changes nothing while draining.
    await health.refresh();
    expect(statuses()).toEqual(every("NOT_SERVING"));
    expect(ended).toBe(false);
    health.end();
    expect(ended).toBe(true);
    cancel();
  });

  it("a watcher that arrives after the end gets the final status and is ended", async () => {
    const { health } = setup();
    health.listening();
    health.end();
    const seen: WatchedStatus[] = [];
    const ended = new Promise<void>((resolve) => watchHealth(health, "", (s) => seen.push(s), resolve));
    await ended;
    expect(seen).toEqual(["NOT_SERVING"]);
  });

  it("an unknown name is unknown to Check (undefined) and SERVICE_UNKNOWN to Watch", async () => {
    const { health } = setup();
    health.listening();
    expect(health.status("no.such.Service")).toBeUndefined();
    const seen: WatchedStatus[] = [];
    const cancel = watchHealth(
      health,
      "no.such.Service",
      (s) => seen.push(s),
      () => {},
    );
    await expect.poll(() => seen).toEqual(["SERVICE_UNKNOWN"]);
    cancel();
  });
});
