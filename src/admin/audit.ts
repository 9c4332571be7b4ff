import type { Sql, TransactionSql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import { armCommitDeadline } from "../store/commit-deadline.js";
import { CHANGES_CHANNEL, type Change } from "../store/db.js";
import { authorize, permits, ROOT_KEY_SPACE_ID, ROOT_WORKSPACE_ID } from "./admin-policy.js";
import { currentDeadline, deadlinePassed } from "./deadline.js";
import { AdminError, invalid } from "./errors.js";

/** One mutation to record: who did what to which target, before and after (never a secret). */
export interface AuditEntry {
  actor: string;
  action: string;
  targetType: string;
  targetId: string;
  before?: unknown;
  after?: unknown;
}

/** A recorded audit event. */
export interface AuditEvent extends Required<Omit<AuditEntry, "before" | "after">> {
  id: string;
  at: Date;
  before: unknown;
  after: unknown;
}

function json(value: unknown): unknown {
  return value === undefined ? null : JSON.parse(JSON.stringify(value));
}

// Changes recorded in each open transaction, announced in process once it commits.
const pending = new WeakMap<TransactionSql, Change[]>();

/** Tells this instance's caches about a committed change at once; other instances hear it through NOTIFY. */
export type Announce = (change: Change) => void;

/** A transaction runner that announces the changes it recorded after it commits, and none if it rolls back. */
export type Transact = <T>(fn: (tx: TransactionSql) => Promise<T>) => Promise<T>;

function tooLate(): AdminError {
  return new AdminError(
    "unavailable",
    "the database did not answer within the call's deadline; the change was not applied",
  );
}

/**
 * Creates the transaction runner every admin service writes through. Under a call deadline the transaction commits
 * by then or not at all: the server refuses a late COMMIT itself (armCommitDeadline), and one not yet sent is
 * replaced by a ROLLBACK.
 */
export function createTransact(sql: Sql, announce: Announce): Transact {
  return async <T>(fn: (tx: TransactionSql) => Promise<T>): Promise<T> => {
    const deadline = currentDeadline();
    if (deadline && deadlinePassed(deadline)) throw tooLate();
    const changes: Change[] = [];
    const result = (await sql.begin(async (tx) => {
      pending.set(tx, changes);
      if (deadline && !(await armCommitDeadline(tx, deadline.commitBy))) throw tooLate();
      const value = await fn(tx);
      if (deadline && deadlinePassed(deadline)) throw tooLate();
      return value;
    })) as T;
    for (const change of changes) announce(change);
    return result;
  };
}

/** Records an audit event and announces the change, inside the caller's transaction so both commit with it. */
export async function recordChange(tx: TransactionSql, entry: AuditEntry, change: Change): Promise<void> {
  await tx`
    insert into audit_events (actor, action, target_type, target_id, before, after)
    values (${entry.actor}, ${entry.action}, ${entry.targetType}, ${entry.targetId},
            ${tx.json(json(entry.before) as never)}, ${tx.json(json(entry.after) as never)})`;
  // NOTIFY inside a transaction is delivered on commit, so caches never see an uncommitted change.
  await tx`select pg_notify(${CHANGES_CHANNEL}, ${JSON.stringify(change)})`;
  pending.get(tx)?.push(change);
}

// Audit event ids are Postgres bigints (bigserial): the token is the last id of a page, in decimal.
const MAX_BIGINT = 2n ** 63n - 1n;

function auditCursor(token: string): string {
  if (/^\d{1,19}$/.test(token) && BigInt(token) <= MAX_BIGINT) return token;
  throw invalid("page_token", "is not a token this server issued");
}

/** Whether an audit event is about a system target: the system key space or workspace, or a root key. */
function systemEvent(sql: Sql) {
  return sql`(target_id in (${ROOT_KEY_SPACE_ID}, ${ROOT_WORKSPACE_ID})
    or (target_type = 'key' and ${ROOT_KEY_SPACE_ID} in (after->>'keySpaceId', before->>'keySpaceId')))`;
}

/**
 * Lists audit events, newest first, optionally for one target, with keyset pagination. Events about system
 * targets are listed only to a caller with admin:root; asking for one such target without it is refused.
 */
export async function listAuditEvents(
  sql: Sql,
  actor: AdminActor,
  options: { targetId: string; pageSize: number; pageToken: string },
): Promise<{ events: AuditEvent[]; nextPageToken: string }> {
  authorize(actor, "ListAuditEvents", "customer");
  const limit = Math.min(options.pageSize || 100, 1000);
  const before = options.pageToken ? auditCursor(options.pageToken) : null;
  const seesSystem = permits(actor, "ListAuditEvents", "system");
  if (options.targetId && !seesSystem) {
    const [system] = await sql`
      select 1 where ${options.targetId} in (${ROOT_KEY_SPACE_ID}, ${ROOT_WORKSPACE_ID})
        or exists (select 1 from keys where id = ${options.targetId} and key_space_id = ${ROOT_KEY_SPACE_ID})
        or exists (select 1 from audit_events where target_id = ${options.targetId} and ${systemEvent(sql)})`;
    if (system) authorize(actor, "ListAuditEvents", "system");
  }
  const rows = await sql<
    {
      id: string;
      at: Date;
      actor: string;
      action: string;
      target_type: string;
      target_id: string;
      before: unknown;
      after: unknown;
    }[]
  >`
    select * from audit_events
    where (${options.targetId} = '' or target_id = ${options.targetId})
      and (${seesSystem} or not ${systemEvent(sql)})
      and (${before}::bigint is null or id < ${before}::bigint)
    order by id desc limit ${limit + 1}`;
  const page = rows.slice(0, limit);
  return {
    events: page.map((r) => ({
      id: String(r.id),
      at: r.at,
      actor: r.actor,
      action: r.action,
      targetType: r.target_type,
      targetId: r.target_id,
      before: r.before,
      after: r.after,
    })),
    nextPageToken: rows.length > limit ? String(page[page.length - 1]!.id) : "",
  };
}
