import type { Sql } from "postgres";
import type { Logger } from "../log.js";

/** Whether the database answers a trivial query now. */
export type DatabaseProbe = () => Promise<boolean>;

/**
 * A probe that runs `select 1` and reports false when it fails or takes longer than `timeoutMs`: a hung server
 * accepts connections and queries but never answers, so only a timeout on the caller's side tells it apart from a
 * slow one. One query at most is in flight: a probe made while a slow one still runs waits on that one instead of
 * piling more onto a pool that is already stuck.
 */
export function createDatabaseProbe(sql: Sql, options: { timeoutMs: number }): DatabaseProbe {
  let running: Promise<boolean> | undefined;
  return () => {
    running ??= sql`select 1`.then(
      () => true,
      () => false,
    );
    const query = running;
    void query.finally(() => {
      if (running === query) running = undefined;
    });
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), options.timeoutMs);
      timer.unref();
    });
    return Promise.race([query, late]).finally(() => clearTimeout(timer));
  };
}

/** Whether the database answered its last probe, kept current in the background. */
export interface DatabaseHealth {
  readonly up: boolean;
  stop(): void;
}

/** Probes every `intervalMs` and remembers the outcome, logging each change. */
export function watchDatabase(
  probe: DatabaseProbe,
  options: {
    intervalMs: number;
    logger: Logger;
    /** Told each probe's outcome and how long it took to come (for metrics). */
    onProbe?: (ok: boolean, seconds: number) => void;
  },
): DatabaseHealth {
  let up = true;
  const timer = setInterval(async () => {
    const started = performance.now();
    const ok = await probe();
    options.onProbe?.(ok, (performance.now() - started) / 1000);
    if (ok !== up) {
      if (ok) options.logger.info("database reachable again");
      else options.logger.warn("database unreachable: no answer to a probe in time");
    }
    up = ok;
  }, options.intervalMs);
  timer.unref();
  return {
    get up() {
      return up;
    },
    stop: () => clearInterval(timer),
  };
}
