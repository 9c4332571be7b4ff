import type { Sql } from "postgres";
import type { UsageRecorder } from "../domain/ports.js";
import type { Logger } from "../log.js";

/** Batches key usage in memory and writes `last_used_at` and daily counts every `flushMs`. */
export function createUsageRecorder(
  sql: Sql,
  options: { flushMs: number; logger: Logger },
): UsageRecorder & { flush(): Promise<void>; close(): Promise<void> } {
  let pending = new Map<string, number>();
  const flush = async () => {
    if (pending.size === 0) return;
    const batch = pending;
    pending = new Map();
    const ids = [...batch.keys()];
    const counts = ids.map((id) => batch.get(id)!);
    try {
      await sql`update keys set last_used_at = now() where id = any(${ids})`;
      await sql`
        insert into key_usage (key_id, day, requests)
        select id, current_date, n from unnest(${ids}::text[], ${counts}::bigint[]) as u(id, n)
        where exists (select 1 from keys where keys.id = u.id)
        on conflict (key_id, day) do update set requests = key_usage.requests + excluded.requests`;
    } catch (error) {
      // Usage is best-effort; a failed flush must never affect checks.
      options.logger.warn("usage flush failed", { error });
    }
  };
  const timer = setInterval(() => void flush(), options.flushMs);
  timer.unref();
  return {
    touch(keyId) {
      pending.set(keyId, (pending.get(keyId) ?? 0) + 1);
    },
    flush,
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}
