import type { TransactionSql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import type { KeyRow } from "../store/rows.js";
import { type AdminOperation, authorize, ROOT_KEY_SPACE_ID } from "./admin-policy.js";
import { AdminError, notFound } from "./errors.js";

// The two-key form of the advisory lock, so it cannot collide with the migrations' single-key lock.
const LOCK_CLASS = 0x6b6d; // "km"
const ROOT_KEYS_LOCK = 1;

/**
 * Serialises changes to root keys until the transaction ends. Row locks alone would let two root keys revoke each
 * other at once, each seeing the other still active.
 */
async function lockRootKeys(tx: TransactionSql): Promise<void> {
  await tx`select pg_advisory_xact_lock(${LOCK_CLASS}, ${ROOT_KEYS_LOCK})`;
}

/**
 * Locks a key for a change by `operation` once the caller's scopes allow it on that key (admin:root for a root
 * key). `root` tells the caller to finish with ensureRootKeyRemains.
 */
export async function lockKey(
  tx: TransactionSql,
  actor: AdminActor,
  operation: AdminOperation,
  id: string,
): Promise<{ row: KeyRow; root: boolean }> {
  // A key never changes key space, so an unlocked read decides which locks to take, always in the same order.
  const [peek] = await tx<{ key_space_id: string }[]>`select key_space_id from keys where id = ${id}`;
  if (!peek) throw notFound("key", id);
  const root = peek.key_space_id === ROOT_KEY_SPACE_ID;
  authorize(actor, operation, root ? "system" : "customer");
  if (root) await lockRootKeys(tx);
  const [row] = await tx<KeyRow[]>`select * from keys where id = ${id} for update`;
  if (!row) throw notFound("key", id);
  return { row, root };
}

/**
 * Refuses (FAILED_PRECONDITION) a change that left no active admin:root key: nobody could manage root keys again
 * without direct database access. Call after the change, in the transaction that locked the key with lockKey.
 */
export async function ensureRootKeyRemains(tx: TransactionSql): Promise<void> {
  const [row] = await tx<{ n: number }[]>`
    select count(*)::int as n from keys
    where key_space_id = ${ROOT_KEY_SPACE_ID} and 'admin:root' = any(scopes)
      and revoked_at is null and (expires_at is null or expires_at > now())`;
  if ((row?.n ?? 0) === 0) {
    throw new AdminError(
      "failed_precondition",
      "this would leave no active admin:root key; create another admin:root key first",
    );
  }
}
