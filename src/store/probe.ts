import type { Sql } from "postgres";
import type { Logger } from "../log.js";

/** The outcome of one probe: the database answered in time, or why not. */
export type ProbeResult = { ok: true; latencyMs: number } | { ok: false; reason: string };

/** A probe's result, and when its query settled (a hung database answers long after the result is due). */
function startProbe(sql: Sql, timeoutMs: number): { result: Promise<ProbeResult>; settled: Promise<void> } {
  const started = performance.now();
  let settle!: () => void;
  const settled = new Promise<void>((resolve) => {
    settle = resolve;
  });
  const result = new Promise<ProbeResult>((resolve) => {
    const timer = setTimeout(
      () => resolve({ ok: false, reason: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
    sql`select 1`.then(
      () => {
        clearTimeout(timer);
        settle();
        resolve({ ok: true, latencyMs: performance.now() - started });
      },
      (error: unknown) => {
        clearTimeout(timer);
        settle();
        const code = (error as { code?: unknown } | null)?.code;
        resolve({ ok: false, reason: typeof code === "string" ? code : "query failed" });
      },
    );
  });
  return { result, settled };
}

/**
 * Asks the database a trivial query and waits at most `timeoutMs`. A hung server accepts connections and queries
 * but never answers, so only a timeout on the caller's side tells it apart from a slow one.
 */
export function probeDatabase(sql: Sql, timeoutMs: number): Promise<ProbeResult> {
  return startProbe(sql, timeoutMs).result;
}

/** Whether the database answered its last probe, kept current in the background. */
export interface DatabaseHealth {
  readonly up: boolean;
  stop(): void;
}

/**
 * Probes every `intervalMs` and remembers the outcome. A probe still unanswered is not repeated until it settles,
 * so a hung database holds at most one probe's connection.
 */
export function watchDatabase(
  sql: Sql,
  options: {
    intervalMs: number;
    timeoutMs: number;
    logger: Logger;
    /** Told each probe's outcome and how long it took to come (for metrics). */
    onProbe?: (result: ProbeResult, seconds: number) => void;
  },
): DatabaseHealth {
  let up = true;
  let inFlight = false;
  const probe = async () => {
    // The previous probe's query is still unanswered; its timeout has reported the database down already.
    if (inFlight) return;
    inFlight = true;
    const started = performance.now();
    const { result, settled } = startProbe(sql, options.timeoutMs);
    void settled.then(() => {
      inFlight = false;
    });
    const outcome = await result;
    options.onProbe?.(outcome, (performance.now() - started) / 1000);
    if (outcome.ok !== up) {
      if (outcome.ok) options.logger.info("database reachable again");
      else options.logger.warn("database unreachable", { reason: outcome.reason });
    }
    up = outcome.ok;
  };
  const timer = setInterval(() => void probe(), options.intervalMs);
  timer.unref();
  return {
    get up() {
      return up;
    },
    stop: () => clearInterval(timer),
  };
}
