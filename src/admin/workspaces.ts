import type { Sql, TransactionSql } from "postgres";
import { randomBase32 } from "../domain/encoding.js";
import type { Limit, Member, MemberStatus, Workspace, WorkspaceStatus } from "../domain/types.js";
import { type MemberRow, toMember, toWorkspace, type WorkspaceRow } from "../store/rows.js";
import { type Announce, createTransact, recordChange } from "./audit.js";
import { AdminError, invalid, notFound } from "./errors.js";
import { newId } from "./ids.js";
import { decodePageToken, pageSize, paginate } from "./pagination.js";
import { definedFields } from "./patch.js";

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
  async function lockWorkspace(tx: TransactionSql, id: string): Promise<WorkspaceRow> {
    const [row] = await tx<WorkspaceRow[]>`select * from workspaces where id = ${id} for update`;
    if (!row || row.system) throw notFound("workspace", id);
    return row;
  }

  return {
    /** Creates a workspace; a missing key segment gets a random one. */
    async create(actor: string, input: NewWorkspace): Promise<Workspace> {
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
            actor,
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
    async update(actor: string, id: string, patch: WorkspacePatch): Promise<Workspace> {
      return transact(async (tx) => {
        const row = await lockWorkspace(tx, id);
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
          { actor, action: "workspace.update", targetType: "workspace", targetId: id, before, after },
          { type: "workspace", id },
        );
        return after;
      });
    },

    /** Reads a workspace. */
    async get(id: string): Promise<Workspace> {
      const [row] = await sql<WorkspaceRow[]>`select * from workspaces where id = ${id} and not system`;
      if (!row) throw notFound("workspace", id);
      return toWorkspace(row);
    },

    /** Lists workspaces, oldest first. */
    async list(size: number, token: string): Promise<{ workspaces: Workspace[]; nextPageToken: string }> {
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
      actor: string,
      input: { workspaceId: string; name: string; role: string; accountOwner: boolean },
    ): Promise<Member> {
      return transact(async (tx) => {
        await lockWorkspace(tx, input.workspaceId);
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
            actor,
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
      actor: string,
      id: string,
      patch: { role?: string; status?: MemberStatus },
    ): Promise<Member> {
      return transact(async (tx) => {
        const [row] = await tx<MemberRow[]>`select * from members where id = ${id} for update`;
        if (!row) throw notFound("member", id);
        const before = toMember(row);
        const [updated] = await tx<MemberRow[]>`
          update members set role = ${patch.role ?? row.role}, status = ${patch.status ?? row.status}, updated_at = now()
          where id = ${id} returning *`;
        const after = toMember(updated!);
        await recordChange(
          tx,
          { actor, action: "member.update", targetType: "member", targetId: id, before, after },
          { type: "member", id },
        );
        return after;
      });
    },

    /** Lists a workspace's members. */
    async listMembers(workspaceId: string): Promise<Member[]> {
      await this.get(workspaceId);
      const rows = await sql<
        MemberRow[]
      >`select * from members where workspace_id = ${workspaceId} order by created_at, id`;
      return rows.map(toMember);
    },
  };
}

/** The workspace service's API. */
export type WorkspaceService = ReturnType<typeof createWorkspaceService>;
