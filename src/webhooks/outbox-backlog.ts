import type { Sql } from "postgres";

/** The webhook deliveries still waiting in the outbox, and the age of the oldest in seconds (0 when none). */
export async function readOutboxBacklog(sql: Sql): Promise<{ pending: number; oldestAgeSeconds: number }> {
  // The predicate is the partial index's (webhook_outbox_due), so this reads only the pending rows.
  const [row] = await sql<{ pending: number; age: number }[]>`
    select count(*)::int as pending,
      coalesce(extract(epoch from now() - min(created_at)), 0)::float8 as age
    from webhook_outbox where delivered_at is null and failed_at is null`;
  return { pending: row?.pending ?? 0, oldestAgeSeconds: Math.max(0, row?.age ?? 0) };
}
