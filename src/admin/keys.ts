import type { Sql, TransactionSql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import type { Digester } from "../domain/digest.js";
import { newId } from "../domain/ids.js";
import { mintKey } from "../domain/key-format.js";
import { unknownScope } from "../domain/scopes.js";
import type { Key, KeySpace } from "../domain/types.js";
import { type KeyRow, type KeySpaceRow, toKey, toKeySpace, type WorkspaceRow } from "../store/rows.js";
import { authorize, authorizeCall, authorizeGrant } from "./admin-policy.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, invalid, notFound } from "./errors.js";
import { ensureRootKeyRemains, lockKey } from "./key-guards.js";
import type { KeyPatch, NewKey } from "./key-input.js";
import { createKeyQueries } from "./key-queries.js";
import { checkOwner, checkQuota, checkWebhook, fingerprint } from "./key-rules.js";
import type { Sealer } from "./sealer.js";

export type { KeyPatch, NewKey } from "./key-input.js";

/** A key together with its secret, which the caller sees this once. */
export interface IssuedKey {
  key: Key;
  secret: string;
}

const REPLAY_WINDOW_MS = 24 * 3600 * 1000;

/** Options for the key service. */
export interface KeyServiceOptions {
  sql: Sql;
  digest: Digester;
  sealer: Sealer;
  /** Applies a committed change to this instance's caches before the call returns. */
  announce?: Announce;
}

/** Issues, changes, rotates, revokes and deletes keys; each call is one transaction with its audit record. */
export function createKeyService({ sql, digest, sealer, announce = () => {} }: KeyServiceOptions) {
  const transact = createTransact(sql, announce);

  async function insertKey(
    tx: TransactionSql,
    space: KeySpace,
    segment: string,
    fields: Omit<
      KeyRow,
      "id" | "digest" | "display" | "created_at" | "updated_at" | "last_used_at" | "revoked_at"
    >,
    actor: AdminActor,
  ): Promise<IssuedKey> {
    const minted = mintKey(space.format, segment);
    const [row] = await tx<KeyRow[]>`
      insert into keys (id, key_space_id, workspace_id, owner_type, owner_member_id, name, display, digest, scopes,
                        metadata, limits, rejection_webhook_url, expires_at, rotated_from_id, rotated_to_id, created_by)
      values (${newId("key")}, ${space.id}, ${fields.workspace_id}, ${fields.owner_type}, ${fields.owner_member_id},
              ${fields.name}, ${minted.display}, ${digest(minted.canonical)}, ${fields.scopes},
              ${tx.json(fields.metadata as never)}, ${fields.limits === null ? null : tx.json(fields.limits as never)},
              ${fields.rejection_webhook_url}, ${fields.expires_at}, ${fields.rotated_from_id}, ${fields.rotated_to_id},
              ${actor.keyId})
      returning *`;
    return { key: toKey(row!), secret: minted.secret };
  }

  async function audited(
    tx: TransactionSql,
    actor: AdminActor,
    action: string,
    id: string,
    before?: Key,
    after?: Key,
  ) {
    await recordChange(
      tx,
      { actor: actor.keyId, action, targetType: "key", targetId: id, before, after },
      { type: "key", id },
    );
  }

  return {
    /**
     * Creates a key; the secret is returned here only (or to a retry with the same idempotency key). `rootKey`
     * marks a CreateRootKey call, the only way into the system key space.
     */
    async create(
      actor: AdminActor,
      input: NewKey,
      options: { rootKey?: boolean; onlyIfFirst?: boolean } = {},
    ): Promise<IssuedKey> {
      const operation = options.rootKey ? "CreateRootKey" : "CreateKey";
      authorizeCall(actor, operation);
      if (options.rootKey) authorizeGrant(actor, input.scopes);
      checkWebhook(input.rejectionWebhookUrl);
      if (input.expiresAt && input.expiresAt.getTime() <= Date.now())
        throw invalid("expires_at", "is in the past");
      return transact(async (tx) => {
        const [spaceRow] = await tx<KeySpaceRow[]>`select * from key_spaces where id = ${input.keySpaceId}`;
        if (!spaceRow) throw notFound("key space", input.keySpaceId);
        const space = toKeySpace(spaceRow);
        // Locking the workspace row serialises creates per workspace, so quotas hold under racing creates.
        const [ws] = await tx<
          WorkspaceRow[]
        >`select * from workspaces where id = ${input.workspaceId} for update`;
        if (!ws) throw notFound("workspace", input.workspaceId);
        authorize(actor, operation, spaceRow.system || ws.system ? "system" : "customer");
        if (options.onlyIfFirst) {
          const [any] =
            await tx`select 1 from keys where key_space_id = ${space.id} and workspace_id = ${ws.id} limit 1`;
          if (any) throw new AdminError("already_exists", "a key exists already");
        }
        if (input.idempotencyKey) {
          const [prior] = await tx<
            { fingerprint: Buffer; key_id: string; sealed_secret: Buffer | null; created_at: Date }[]
          >`
            select * from idempotency where workspace_id = ${ws.id} and idempotency_key = ${input.idempotencyKey}`;
          if (prior) {
            if (!prior.fingerprint.equals(fingerprint(input))) {
              throw new AdminError(
                "failed_precondition",
                "idempotency_key was already used with a different request",
              );
            }
            const [row] = await tx<KeyRow[]>`select * from keys where id = ${prior.key_id}`;
            if (!row)
              throw new AdminError(
                "failed_precondition",
                "the key created under this idempotency_key was deleted",
              );
            const fresh = Date.now() - prior.created_at.getTime() < REPLAY_WINDOW_MS;
            const secret = fresh && prior.sealed_secret ? (sealer.open(prior.sealed_secret) ?? "") : "";
            return { key: toKey(row), secret };
          }
        }
        const bad = unknownScope(space.scopeModel, input.scopes);
        if (bad !== undefined)
          throw invalid("scopes", `${JSON.stringify(bad)} is not a scope of key space ${space.name}`);
        await checkOwner(tx, space, input);
        await checkQuota(tx, space, input);
        const issued = await insertKey(
          tx,
          space,
          ws.key_segment,
          {
            key_space_id: space.id,
            workspace_id: ws.id,
            owner_type: input.ownerType,
            owner_member_id: input.memberId || null,
            name: input.name,
            scopes: input.scopes,
            metadata: input.metadata,
            limits: input.limits,
            rejection_webhook_url: input.rejectionWebhookUrl,
            expires_at: input.expiresAt,
            rotated_from_id: null,
            rotated_to_id: null,
          },
          actor,
        );
        if (input.idempotencyKey) {
          await tx`
            insert into idempotency (workspace_id, idempotency_key, fingerprint, key_id, sealed_secret)
            values (${ws.id}, ${input.idempotencyKey}, ${fingerprint(input)}, ${issued.key.id}, ${sealer.seal(issued.secret)})`;
        }
        await audited(tx, actor, "key.create", issued.key.id, undefined, issued.key);
        return issued;
      });
    },

    /** Changes a key's name, scopes, metadata, limits, webhook or expiry; effective on the next check. */
    async update(actor: AdminActor, id: string, patch: KeyPatch): Promise<Key> {
      authorizeCall(actor, "UpdateKey");
      if (patch.rejectionWebhookUrl !== undefined) checkWebhook(patch.rejectionWebhookUrl);
      return transact(async (tx) => {
        const { row, root } = await lockKey(tx, actor, "UpdateKey", id);
        if (root && patch.scopes) authorizeGrant(actor, patch.scopes);
        if (patch.scopes) {
          const [spaceRow] = await tx<KeySpaceRow[]>`select * from key_spaces where id = ${row.key_space_id}`;
          const bad = unknownScope(toKeySpace(spaceRow!).scopeModel, patch.scopes);
          if (bad !== undefined)
            throw invalid("scopes", `${JSON.stringify(bad)} is not a scope of this key space`);
        }
        const limits = patch.limits === undefined ? row.limits : patch.limits;
        const [updated] = await tx<KeyRow[]>`
          update keys set
            name = ${patch.name ?? row.name}, scopes = ${patch.scopes ?? row.scopes},
            metadata = ${tx.json((patch.metadata ?? row.metadata) as never)},
            limits = ${limits === null ? null : tx.json(limits as never)},
            rejection_webhook_url = ${patch.rejectionWebhookUrl ?? row.rejection_webhook_url},
            expires_at = ${patch.expiresAt === undefined ? row.expires_at : patch.expiresAt},
            updated_at = now()
          where id = ${id} returning *`;
        const after = toKey(updated!);
        if (root) await ensureRootKeyRemains(tx);
        await audited(tx, actor, "key.update", id, toKey(row), after);
        return after;
      });
    },

    /** Issues a new key with a new secret and public part; the old one works for the grace period (0: dies now). */
    async rotate(
      actor: AdminActor,
      id: string,
      graceSeconds?: number,
    ): Promise<IssuedKey & { previous: Key }> {
      authorizeCall(actor, "RotateKey");
      return transact(async (tx) => {
        const { row, root } = await lockKey(tx, actor, "RotateKey", id);
        const old = toKey(row);
        if (old.status !== "active") throw new AdminError("failed_precondition", `the key is ${old.status}`);
        if (row.rotated_to_id) throw new AdminError("failed_precondition", "the key was already rotated");
        const [spaceRow] = await tx<KeySpaceRow[]>`select * from key_spaces where id = ${row.key_space_id}`;
        const space = toKeySpace(spaceRow!);
        const [ws] = await tx<WorkspaceRow[]>`select * from workspaces where id = ${row.workspace_id}`;
        const issued = await insertKey(
          tx,
          space,
          ws!.key_segment,
          { ...row, rotated_from_id: row.id, rotated_to_id: null },
          actor,
        );
        const grace = graceSeconds ?? space.rotationGraceSeconds;
        const [prev] =
          grace > 0
            ? await tx<KeyRow[]>`
                update keys set rotated_to_id = ${issued.key.id}, updated_at = now(),
                  expires_at = least(coalesce(expires_at, 'infinity'), now() + make_interval(secs => ${grace}))
                where id = ${id} returning *`
            : await tx<KeyRow[]>`
                update keys set rotated_to_id = ${issued.key.id}, revoked_at = now(), updated_at = now()
                where id = ${id} returning *`;
        const previous = toKey(prev!);
        if (root) await ensureRootKeyRemains(tx);
        await audited(tx, actor, "key.rotate", id, old, previous);
        await audited(tx, actor, "key.create", issued.key.id, undefined, issued.key);
        return { ...issued, previous };
      });
    },

    /** Stops a key at once; it stays listed and can be activated again unchanged. */
    async revoke(actor: AdminActor, id: string): Promise<Key> {
      authorizeCall(actor, "RevokeKey");
      return transact(async (tx) => {
        const { row, root } = await lockKey(tx, actor, "RevokeKey", id);
        const [updated] = await tx<KeyRow[]>`
          update keys set revoked_at = coalesce(revoked_at, now()), updated_at = now() where id = ${id} returning *`;
        const after = toKey(updated!);
        if (root) await ensureRootKeyRemains(tx);
        await audited(tx, actor, "key.revoke", id, toKey(row), after);
        return after;
      });
    },

    /** Re-activates a revoked key with its old value; a key replaced by rotation stays dead. */
    async activate(actor: AdminActor, id: string): Promise<Key> {
      authorizeCall(actor, "ActivateKey");
      return transact(async (tx) => {
        const { row } = await lockKey(tx, actor, "ActivateKey", id);
        if (row.rotated_to_id)
          throw new AdminError("failed_precondition", "the key was rotated; use its successor");
        const [updated] = await tx<KeyRow[]>`
          update keys set revoked_at = null, updated_at = now() where id = ${id} returning *`;
        const after = toKey(updated!);
        await audited(tx, actor, "key.activate", id, toKey(row), after);
        return after;
      });
    },

    /** Deletes a key for good: it is revoked first, and its usage history goes with it. */
    async delete(actor: AdminActor, id: string): Promise<void> {
      authorizeCall(actor, "DeleteKey");
      await transact(async (tx) => {
        const { row, root } = await lockKey(tx, actor, "DeleteKey", id);
        await tx`update keys set revoked_at = coalesce(revoked_at, now()) where id = ${id}`;
        await tx`delete from key_usage where key_id = ${id}`;
        await tx`delete from idempotency where key_id = ${id}`;
        await tx`update keys set rotated_to_id = null where rotated_to_id = ${id}`;
        await tx`delete from keys where id = ${id}`;
        if (root) await ensureRootKeyRemains(tx);
        await audited(tx, actor, "key.delete", id, toKey(row), undefined);
      });
    },

    ...createKeyQueries(sql),
  };
}

/** The key service's API. */
export type KeyService = ReturnType<typeof createKeyService>;
