import type { Sql, TransactionSql } from "postgres";
import type { AdminActor } from "../domain/admin-actor.js";
import { randomBase32 } from "../domain/encoding.js";
import { newId } from "../domain/ids.js";
import type { Limit, Member, MemberStatus, Workspace, WorkspaceStatus } from "../domain/types.js";
import { type MemberRow, toMember, toWorkspace, type WorkspaceRow } from "../store/rows.js";
import { type AdminOperation, authorize, authorizeCall } from "./admin-policy.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, invalid, notFound } from "./errors.js";
import { decodePageToken, pageSize, paginate } from "./pagination.js";
import { definedFields } from "./patch.js";
import { createWorkspaceDeletion } from "./workspace-delete.js";

/** What an operator sets when creating a workspace. */
export interface NewWorkspace {
  name: string;
  keySegment: string;
  apiAccess: boolean;
  plan: string;
  keyLimits: Limit[] | null;
  workspaceLimits: Limit[] | null;
  maxKeyAgeDays: number;
}

/** Changes to a workspace; absent fields are kept. */
export interface WorkspacePatch {
  name?: string;
  status?: WorkspaceStatus;
  apiAccess?: boolean;
  plan?: string;
  keyLimits?: Limit[] | null;
  workspaceLimits?: Limit[] | null;
  maxKeyAgeDays?: number;
  ownerMemberId?: string;
}

/** Creates and changes workspaces and their members; every change is audited and announced. */
export function createWorkspaceService(sql: Sql, announce: Announce = () => {}) {
  const transact = createTransact(sql, announce);
  /** Locks a workspace for `operation` once the caller's scopes allow it there (see ADMIN_POLICY). */
  async function lockWorkspace(
    tx: TransactionSql,
    actor: AdminActor,
    operation: AdminOperation,
    id: string,
  ): Promise<WorkspaceRow> {
    const [row] = await tx<WorkspaceRow[]>`select * from workspaces where id = ${id} for update`;
    if (!row) throw notFound("workspace", id);
    authorize(actor, operation, row.system ? "system" : "customer");
    return row;
  }

  /** Reads a workspace for `operation` once the caller's scopes allow it there. */
  async function load(actor: AdminActor, operation: AdminOperation, id: string): Promise<WorkspaceRow> {
    authorizeCall(actor, operation);
    const [row] = await sql<WorkspaceRow[]>`select * from workspaces where id = ${id}`;
    if (!row) throw notFound("workspace", id);
    authorize(actor, operation, row.system ? "system" : "customer");
    return row;
  }

  return {
    /** Creates a workspace; a missing key segment gets a random one. */
    async create(actor: AdminActor, input: NewWorkspace): Promise<Workspace> {
      authorize(actor, "CreateWorkspace", "customer");
      const segment = input.keySegment || randomBase32(6).toLowerCase();
      return transact(async (tx) => {
        const [taken] = await tx`select 1 from workspaces where key_segment = ${segment}`;
        if (taken) throw new AdminError("already_exists", `key segment ${JSON.stringify(segment)} is taken`);
        const [row] = await tx<WorkspaceRow[]>`
          insert into workspaces (id, name, key_segment, api_access, plan, key_limits, workspace_limits, max_key_age_days)
          values (${newId("ws")}, ${input.name}, ${segment}, ${input.apiAccess}, ${input.plan},
                  ${input.keyLimits === null ? null : tx.json(input.keyLimits as never)},
                  ${input.workspaceLimits === null ? null : tx.json(input.workspaceLimits as never)},
                  ${input.maxKeyAgeDays})
          returning *`;
        const workspace = toWorkspace(row!);
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "workspace.create",
            targetType: "workspace",
            targetId: workspace.id,
            after: workspace,
          },
          { type: "workspace", id: workspace.id },
        );
        return workspace;
      });
    },

    /** Applies `patch` to a workspace. */
    async update(actor: AdminActor, id: string, patch: WorkspacePatch): Promise<Workspace> {
      authorizeCall(actor, "UpdateWorkspace");
      return transact(async (tx) => {
        const row = await lockWorkspace(tx, actor, "UpdateWorkspace", id);
        const before = toWorkspace(row);
        if (patch.ownerMemberId) {
          const [owner] =
            await tx`select 1 from members where id = ${patch.ownerMemberId} and workspace_id = ${id}`;
          if (!owner) throw invalid("owner_member_id", "is not a member of this workspace");
        }
        const next = { ...before, ...definedFields(patch) };
        const [updated] = await tx<WorkspaceRow[]>`
          update workspaces set
            name = ${next.name}, status = ${next.status}, api_access = ${next.apiAccess}, plan = ${next.plan},
            key_limits = ${next.keyLimits === null ? null : tx.json(next.keyLimits as never)},
            workspace_limits = ${next.workspaceLimits === null ? null : tx.json(next.workspaceLimits as never)},
            max_key_age_days = ${next.maxKeyAgeDays}, owner_member_id = ${next.ownerMemberId || null},
            updated_at = now()
          where id = ${id} returning *`;
        const after = toWorkspace(updated!);
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "workspace.update",
            targetType: "workspace",
            targetId: id,
            before,
            after,
          },
          { type: "workspace", id },
        );
        return after;
      });
    },

    /** Reads a workspace. */
    async get(actor: AdminActor, id: string): Promise<Workspace> {
      return toWorkspace(await load(actor, "GetWorkspace", id));
    },

    /** Lists workspaces, oldest first. */
    async list(
      actor: AdminActor,
      size: number,
      token: string,
    ): Promise<{ workspaces: Workspace[]; nextPageToken: string }> {
      authorize(actor, "ListWorkspaces", "customer");
      const limit = pageSize(size);
      const cursor = decodePageToken(token);
      const rows = await sql<WorkspaceRow[]>`
        select * from workspaces
        where not system and (${cursor === null} or (created_at, id) > (${cursor?.at ?? null}::timestamptz, ${cursor?.id ?? null}))
        order by created_at, id limit ${limit + 1}`;
      const { page, nextPageToken } = paginate(rows, limit);
      return { workspaces: page.map(toWorkspace), nextPageToken };
    },

    /** Adds a member; `accountOwner` makes them the one organization keys act as. */
    async addMember(
      actor: AdminActor,
      input: { workspaceId: string; name: string; role: string; accountOwner: boolean },
    ): Promise<Member> {
      authorizeCall(actor, "AddMember");
      return transact(async (tx) => {
        await lockWorkspace(tx, actor, "AddMember", input.workspaceId);
        const [row] = await tx<MemberRow[]>`
          insert into members (id, workspace_id, name, role)
          values (${newId("mem")}, ${input.workspaceId}, ${input.name}, ${input.role}) returning *`;
        const member = toMember(row!);
        if (input.accountOwner) {
          await tx`update workspaces set owner_member_id = ${member.id}, updated_at = now() where id = ${input.workspaceId}`;
        }
        await recordChange(
          tx,
          {
            actor: actor.keyId,
            action: "member.add",
            targetType: "member",
            targetId: member.id,
            after: { ...member, accountOwner: input.accountOwner },
          },
          { type: "workspace", id: input.workspaceId },
        );
        return member;
      });
    },

    /** Changes a member's role or status; closing a member stops their user keys. */
    async updateMember(
      actor: AdminActor,
      id: string,
      patch: { role?: string; status?: MemberStatus },
    ): Promise<Member> {
      authorizeCall(actor, "UpdateMember");
      return transact(async (tx) => {
        const [row] = await tx<(MemberRow & { system: boolean })[]>`
          select m.*, w.system from members m join workspaces w on w.id = m.workspace_id
          where m.id = ${id} for update of m`;
        if (!row) throw notFound("member", id);
        authorize(actor, "UpdateMember", row.system ? "system" : "customer");
        const before = toMember(row);
        const [updated] = await tx<MemberRow[]>`
          update members set role = ${patch.role ?? row.role}, status = ${patch.status ?? row.status}, updated_at = now()
          where id = ${id} returning *`;
        const after = toMember(updated!);
        await recordChange(
          tx,
          { actor: actor.keyId, action: "member.update", targetType: "member", targetId: id, before, after },
          { type: "member", id },
        );
        return after;
      });
    },

    /** Reads a member; members of the system workspace are not shown through the API. */
    async getMember(actor: AdminActor, id: string): Promise<Member> {
      authorizeCall(actor, "GetMember");
      const [row] = await sql<(MemberRow & { system: boolean })[]>`
        select m.*, w.system from members m join workspaces w on w.id = m.workspace_id where m.id = ${id}`;
      if (!row) throw notFound("member", id);
      authorize(actor, "GetMember", row.system ? "system" : "customer");
      return toMember(row);
    },

    /** Lists a workspace's members. */
    async listMembers(actor: AdminActor, workspaceId: string): Promise<Member[]> {
      await load(actor, "ListMembers", workspaceId);
      const rows = await sql<
        MemberRow[]
      >`select * from members where workspace_id = ${workspaceId} order by created_at, id`;
      return rows.map(toMember);
    },

    ...createWorkspaceDeletion(sql, announce),
  };
}

/** The workspace service's API. */
export type WorkspaceService = ReturnType<typeof createWorkspaceService>;
