import type { TransactionSql } from "postgres";
import type { Key } from "../domain/types.js";
import { type KeyRow, toKey } from "./rows.js";

/** What deleting a workspace took with it. */
export interface RemovedWorkspaceRows {
  /** The keys deleted, as they were before (revoked ones included), for the audit log and cache invalidation. */
  keys: Key[];
  /** How many of those keys were active (neither revoked nor expired) until this transaction. */
  activeKeys: number;
  members: number;
  approvals: number;
}

/** The active keys of a workspace: neither revoked nor expired now. Read under the caller's workspace lock. */
export async function activeKeyIds(tx: TransactionSql, workspaceId: string): Promise<string[]> {
  const rows = await tx<{ id: string }[]>`
    select id from keys
    where workspace_id = ${workspaceId} and revoked_at is null and (expires_at is null or expires_at > now())
    order by created_at, id`;
  return rows.map((r) => r.id);
}

/**
 * Deletes a workspace and every row that refers to it, children first so no foreign key is left dangling. The
 * caller holds the workspace row locked (FOR UPDATE): creates of keys and members lock it too, and an approval's
 * insert waits on it, so nothing new can refer to the workspace once these statements ran. The audit log is kept.
 */
export async function removeWorkspaceRows(
  tx: TransactionSql,
  workspaceId: string,
): Promise<RemovedWorkspaceRows> {
  // Revoked first, so the key rows the audit log keeps show when each one stopped working.
  const active = await tx<{ id: string }[]>`
    update keys set revoked_at = now(), updated_at = now()
    where workspace_id = ${workspaceId} and revoked_at is null and (expires_at is null or expires_at > now())
    returning id`;
  const keys = await tx<KeyRow[]>`
    select * from keys where workspace_id = ${workspaceId} order by created_at, id`;
  await tx`delete from key_usage where key_id in (select id from keys where workspace_id = ${workspaceId})`;
  await tx`delete from idempotency where workspace_id = ${workspaceId}`;
  const approvals = await tx`delete from approvals where workspace_id = ${workspaceId}`;
  await tx`delete from keys where workspace_id = ${workspaceId}`;
  await tx`update workspaces set owner_member_id = null where id = ${workspaceId}`;
  const members = await tx`delete from members where workspace_id = ${workspaceId}`;
  await tx`delete from workspaces where id = ${workspaceId}`;
  return {
    keys: keys.map(toKey),
    activeKeys: active.length,
    members: members.count,
    approvals: approvals.count,
  };
}
