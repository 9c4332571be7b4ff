import type { Sql } from "postgres";

/** Whether the database answers a trivial query now. */
export type DatabaseProbe = () => Promise<boolean>;

/**
 * A probe that runs `select 1` and reports false when it fails or takes longer than `timeoutMs` (default 1 s):
 * readiness must answer within the orchestrator's probe timeout even when the database hangs.
 * One query at most is in flight: a probe made while a slow one is still running waits on that one instead of piling
 * more onto a pool that is already stuck.
 */
export function createDatabaseProbe(sql: Sql, options: { timeoutMs?: number } = {}): DatabaseProbe {
  const timeoutMs = options.timeoutMs ?? 1_000;
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
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref();
    });
    return Promise.race([query, late]).finally(() => clearTimeout(timer));
  };
}
