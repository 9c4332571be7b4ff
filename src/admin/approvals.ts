import type { Sql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import { authorize, authorizeCall, ROOT_KEY_SPACE_ID, ROOT_WORKSPACE_ID } from "./admin-policy.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, notFound } from "./errors.js";
import { decodePageToken, pageSize, paginate } from "./pagination.js";

/** An approval as admins see it. */
export interface Approval {
  id: string;
  keyId: string;
  workspaceId: string;
  method: string;
  path: string;
  requiredScope: string;
  status: "pending" | "approved" | "rejected" | "used" | "expired";
  reason: string;
  headers: Record<string, string>;
  body: Buffer | null;
  createdAt: Date;
  expiresAt: Date;
  decidedAt: Date | null;
}

interface ApprovalRow {
  id: string;
  key_id: string;
  workspace_id: string;
  key_space_id: string;
  method: string;
  path: string;
  required_scope: string;
  status: Exclude<Approval["status"], "expired">;
  reason: string;
  headers: Record<string, string>;
  body: Buffer | null;
  created_at: Date;
  expires_at: Date;
  decided_at: Date | null;
}

function toApproval(r: ApprovalRow): Approval {
  return {
    id: r.id,
    keyId: r.key_id,
    workspaceId: r.workspace_id,
    method: r.method,
    path: r.path,
    requiredScope: r.required_scope,
    // Expiry is derived, so an approval lapses on time without a sweeper.
    status:
      (r.status === "pending" || r.status === "approved") && r.expires_at.getTime() <= Date.now()
        ? "expired"
        : r.status,
    reason: r.reason,
    headers: r.headers,
    body: r.body,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    decidedAt: r.decided_at,
  };
}

/** The Approvals tab: list queued requests, approve them, or reject them with a reason (which fires the key's webhook). */
export function createApprovalService(sql: Sql, announce: Announce = () => {}) {
  const transact = createTransact(sql, announce);
  async function decide(
    actor: AdminActor,
    id: string,
    status: "approved" | "rejected",
    reason: string,
  ): Promise<Approval> {
    const operation = status === "approved" ? "ApproveRequest" : "RejectRequest";
    authorizeCall(actor, operation);
    return transact(async (tx) => {
      const [row] = await tx<ApprovalRow[]>`select * from approvals where id = ${id} for update`;
      if (!row) throw notFound("approval", id);
      authorize(actor, operation, row.key_space_id === ROOT_KEY_SPACE_ID ? "system" : "customer");
      if (row.status !== "pending")
        throw new AdminError("failed_precondition", `the approval is ${row.status}`);
      if (row.expires_at.getTime() <= Date.now())
        throw new AdminError("failed_precondition", "the approval has expired");
      const [updated] = await tx<ApprovalRow[]>`
        update approvals set status = ${status}, reason = ${reason}, decided_by = ${actor.keyId}, decided_at = now()
        where id = ${id} returning *`;
      const approval = toApproval(updated!);
      if (status === "rejected") {
        const [key] = await tx<
          { rejection_webhook_url: string }[]
        >`select rejection_webhook_url from keys where id = ${row.key_id}`;
        if (key?.rejection_webhook_url) {
          // Queued in the same transaction as the decision: the webhook is sent if and only if the rejection commits.
          await tx`
            insert into webhook_outbox (url, event, payload) values (${key.rejection_webhook_url}, 'approval.rejected',
              ${tx.json({
                approvalId: row.id,
                keyId: row.key_id,
                reason,
                request: {
                  method: row.method,
                  path: row.path,
                  body: row.body ? row.body.toString("utf8") : "",
                  bodyBase64: row.body ? row.body.toString("base64") : "",
                },
                rejectedAt: new Date().toISOString(),
              })})`;
        }
      }
      const { body: _b, ...audited } = approval;
      await recordChange(
        tx,
        {
          actor: actor.keyId,
          action: `approval.${status === "approved" ? "approve" : "reject"}`,
          targetType: "approval",
          targetId: id,
          after: audited,
        },
        { type: "key", id: row.key_id },
      );
      return approval;
    });
  }

  return {
    /** Lists approvals of a workspace, oldest first, optionally by status. */
    async list(
      actor: AdminActor,
      filter: { workspaceId: string; status: string; pageSize: number; pageToken: string },
    ) {
      authorize(actor, "ListApprovals", filter.workspaceId === ROOT_WORKSPACE_ID ? "system" : "customer");
      const limit = pageSize(filter.pageSize);
      const cursor = decodePageToken(filter.pageToken);
      const rows = await sql<ApprovalRow[]>`
        select * from approvals
        where (${filter.workspaceId} = '' or workspace_id = ${filter.workspaceId})
          and key_space_id <> ${ROOT_KEY_SPACE_ID}
          and (${filter.status} = ''
               or (${filter.status} = 'expired' and status in ('pending', 'approved') and expires_at <= now())
               or (${filter.status} in ('pending', 'approved') and status = ${filter.status} and expires_at > now())
               or (${filter.status} in ('rejected', 'used') and status = ${filter.status}))
          and (${cursor === null} or (created_at, id) > (${cursor?.at ?? null}::timestamptz, ${cursor?.id ?? null}))
        order by created_at, id limit ${limit + 1}`;
      const { page, nextPageToken } = paginate(rows, limit);
      return { approvals: page.map(toApproval), nextPageToken };
    },
    /** Reads one approval, with the queued request's headers and body. */
    async get(actor: AdminActor, id: string): Promise<Approval> {
      authorizeCall(actor, "GetApproval");
      const [row] = await sql<ApprovalRow[]>`select * from approvals where id = ${id}`;
      if (!row) throw notFound("approval", id);
      authorize(actor, "GetApproval", row.key_space_id === ROOT_KEY_SPACE_ID ? "system" : "customer");
      return toApproval(row);
    },
    /** Approves a pending request; the client may then retry it once with the approval header. */
    approve: (actor: AdminActor, id: string) => decide(actor, id, "approved", ""),
    /** Rejects a pending request with a reason, queueing the key's rejection webhook. */
    reject: (actor: AdminActor, id: string, reason: string) => decide(actor, id, "rejected", reason),
  };
}

/** The approval service's API. */
export type ApprovalService = ReturnType<typeof createApprovalService>;
