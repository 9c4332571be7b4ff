import type { DatabaseProbe } from "./store/probe.js";
import type { HealthSource, ServingStatus } from "./transport/health-source.js";

/** The service names keymesh reports health for, besides "" (the server as a whole). */
export const HEALTH_SERVICES = {
  authorization: "envoy.service.auth.v3.Authorization",
  verify: "keymesh.v1.KeyVerify",
  admin: "keymesh.v1.KeyAdmin",
} as const;

/** keymesh's readiness: a HealthSource the composition root steps through start, drain and stop. */
export interface Health extends HealthSource {
  /** Both listeners are bound: from now on the statuses follow the database and the cache. */
  listening(): void;
  /** Shutdown has begun: NOT_SERVING on every name from now on, announced to every watcher at once. */
  drain(): void;
  /** The listeners are about to close: Watch streams finish. */
  end(): void;
  readonly draining: boolean;
}

/** What readiness is decided from. */
export interface HealthOptions {
  probeDatabase: DatabaseProbe;
  /** Keys in the in-process cache now. */
  cachedKeys: () => number;
  /** With at least this many cached keys (and 1 or more), checks are served while the database is unreachable. */
  minCachedKeys: number;
  /** How old an evaluation may be before a Check or a watcher's tick probes again (default 1000 ms). */
  maxAgeMs?: number;
}

/**
 * Readiness, decided now: the listeners are up, shutdown has not begun, and the database answers a short probe, or,
 * for the check path (ext_authz Check, KeyVerify and the server as a whole), the key cache is warm enough to keep
 * answering without it. KeyAdmin writes to the database, so it is ready only with one. Liveness is not here: the
 * process is alive when its event loop answers `/livez`, whatever the database does.
 */
export function createHealth(options: HealthOptions): Health {
  const maxAgeMs = options.maxAgeMs ?? 1000;
  const listeners = new Set<(ended: boolean) => void>();
  let listening = false;
  let draining = false;
  let ended = false;
  let databaseUp = false;
  let evaluatedAt = Number.NEGATIVE_INFINITY;
  let probing: Promise<void> | undefined;
  let ticker: NodeJS.Timeout | undefined;

  const cacheWarm = () => options.minCachedKeys > 0 && options.cachedKeys() >= options.minCachedKeys;
  const evaluate = (): Map<string, ServingStatus> => {
    const up = listening && !draining;
    const checks: ServingStatus = up && (databaseUp || cacheWarm()) ? "SERVING" : "NOT_SERVING";
    const admin: ServingStatus = up && databaseUp ? "SERVING" : "NOT_SERVING";
    return new Map([
      ["", checks],
      [HEALTH_SERVICES.authorization, checks],
      [HEALTH_SERVICES.verify, checks],
      [HEALTH_SERVICES.admin, admin],
    ]);
  };
  let statuses = evaluate();

  const notify = (end: boolean) => {
    for (const listener of [...listeners]) listener(end);
  };
  const update = () => {
    const next = evaluate();
    const changed = [...next].some(([name, status]) => statuses.get(name) !== status);
    statuses = next;
    if (changed) notify(false);
  };
  const stopTicker = () => {
    if (ticker) clearInterval(ticker);
    ticker = undefined;
  };

  const refresh = (): Promise<void> => {
    // Draining and stopped servers are NOT_SERVING whatever the database says.
    if (draining || ended || Date.now() - evaluatedAt < maxAgeMs) {
      update();
      return Promise.resolve();
    }
    probing ??= options
      .probeDatabase()
      .then((up) => {
        databaseUp = up;
        evaluatedAt = Date.now();
        update();
      })
      .finally(() => {
        probing = undefined;
      });
    return probing;
  };

  return {
    services: () => [...statuses.keys()].filter((name) => name !== ""),
    status: (service) => statuses.get(service),
    refresh,
    reason() {
      if (ended || draining) return "draining: shutting down";
      if (!listening) return "starting";
      if (statuses.get("") === "NOT_SERVING")
        return "not ready: the database is unreachable and the key cache is cold";
      return databaseUp ? "ready" : "ready: the database is unreachable; answering from the warm key cache";
    },
    subscribe(listener) {
      if (ended) {
        queueMicrotask(() => listener(true));
        return () => {};
      }
      listeners.add(listener);
      // Watchers learn of database changes only if someone probes; while any watch, a timer does.
      ticker ??= setInterval(() => void refresh(), maxAgeMs).unref();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0) stopTicker();
      };
    },
    listening() {
      listening = true;
      void refresh();
    },
    drain() {
      draining = true;
      update();
    },
    end() {
      if (ended) return;
      draining = true;
      ended = true;
      stopTicker();
      update();
      notify(true);
      listeners.clear();
    },
    get draining() {
      return draining;
    },
  };
}
