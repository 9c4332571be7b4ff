import type { TransactionSql } from "postgres";

/**
 * Makes the database refuse to commit `tx` once `commitBy` (epoch ms, our clock) has passed, and caps its statement
 * and lock timeouts at the time left. The refusal happens in the server (migration 005: a deferred constraint trigger
 * on audit_events, which every admin write inserts into), so a COMMIT that reaches a hung server before the deadline
 * but is processed after it when the server resumes rolls back instead of applying a change already answered as
 * failed. Returns false, setting nothing, when no time is left.
 *
 * The deadline is translated into the server's clock without trusting the clocks to agree: the server's reading
 * `now` was taken after we sent and before we received, so `now - received` is at most the true offset, and the
 * translated deadline is never later than the real one (earlier by at most one round trip).
 */
export async function armCommitDeadline(tx: TransactionSql, commitBy: number): Promise<boolean> {
  const [row] = await tx<
    { now: number }[]
  >`select extract(epoch from clock_timestamp())::float8 * 1000 as now`;
  const received = Date.now();
  const left = Math.floor(commitBy - received);
  if (left <= 0) return false;
  const serverCommitBy = commitBy + (row!.now - received);
  await tx`
    select set_config('keymesh.commit_by', ${serverCommitBy.toFixed(3)}, true),
           set_config('statement_timeout', (select case when setting::bigint between 1 and ${left} then setting
                                              else ${String(left)} end
                                            from pg_settings where name = 'statement_timeout'), true),
           set_config('lock_timeout', (select case when setting::bigint between 1 and ${left} then setting
                                         else ${String(left)} end
                                       from pg_settings where name = 'lock_timeout'), true)`;
  return true;
}
