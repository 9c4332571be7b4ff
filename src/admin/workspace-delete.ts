import type { Sql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import { toWorkspace, type WorkspaceRow } from "../store/rows.js";
import { activeKeyIds, removeWorkspaceRows } from "../store/workspace-removal.js";
import { authorize, authorizeCall } from "./admin-policy.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, notFound } from "./errors.js";

/** What a workspace's deletion took with it. */
export interface DeletedWorkspace {
  deletedKeys: number;
  /** Keys that were active until the deletion (only with `force`). */
  revokedKeys: number;
  deletedMembers: number;
  deletedApprovals: number;
}

/**
 * Deletes workspaces. A workspace whose keys still work is kept unless the caller forces it: deleting it would
 * silently cut off whoever uses those keys. Forced, the keys are revoked and deleted in the same transaction, so no
 * key outlives its workspace.
 */
export function createWorkspaceDeletion(sql: Sql, announce: Announce) {
  const transact = createTransact(sql, announce);
  return {
    /** Deletes a workspace with its members, keys, usage and approvals; each key gets its own audit event. */
    async delete(actor: AdminActor, id: string, options: { force: boolean }): Promise<DeletedWorkspace> {
      authorizeCall(actor, "DeleteWorkspace");
      return transact(async (tx) => {
        // Creates of keys and members lock the workspace row too, so none can slip in behind this check.
        const [row] = await tx<WorkspaceRow[]>`select * from workspaces where id = ${id} for update`;
        if (!row) throw notFound("workspace", id);
        authorize(actor, "DeleteWorkspace", row.system ? "system" : "customer");
        const active = await activeKeyIds(tx, id);
        if (active.length > 0 && !options.force) {
          throw new AdminError(
            "failed_precondition",
            `workspace ${JSON.stringify(id)} has ${active.length} active key${active.length === 1 ? "" : "s"} ` +
              `(${active.slice(0, 3).join(", ")}${active.length > 3 ? ", …" : ""}); revoke them first, or set force ` +
              "to revoke and delete them with the workspace",
          );
        }
        const before = toWorkspace(row);
        const removed = await removeWorkspaceRows(tx, id);
        for (const key of removed.keys) {
          await recordChange(
            tx,
            {
              actor: actor.keyId,
              action: "key.delete",
              targetType: "key",
              targetId: key.id,
              before: key,
            },
            { type: "key", id: key.id },
          );
        }
        const summary: DeletedWorkspace = {
          deletedKeys: removed.keys.length,
          revokedKeys: removed.activeKeys,
          deletedMembers: removed.members,
          deletedApprovals: removed.approvals,
        };
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "workspace.delete",
            targetType: "workspace",
            targetId: id,
            before,
            after: { ...summary, force: options.force },
          },
          { type: "workspace", id },
        );
        return summary;
      });
    },
  };
}
