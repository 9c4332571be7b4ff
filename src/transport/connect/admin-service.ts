import type { ConnectRouter, HandlerContext, ServiceImpl } from "@connectrpc/connect";
import * as api from "../../../gen/keymesh/v1/admin_pb.js";
import { KeyStatus, MemberStatus, OwnerType, WorkspaceStatus } from "../../../gen/keymesh/v1/types_pb.js";
import type { ApprovalService } from "../../admin/approvals.js";
import type { AdminServices } from "../../admin/services.js";
import type { Logger } from "../../log.js";
import * as m from "./admin-mapping.js";
import { toConnectError } from "./errors.js";
import { adminActor } from "./interceptors.js";
import { requestLogFields } from "./observe-interceptor.js";

type Impl = ServiceImpl<typeof api.KeyAdmin>;

function opt<T, R>(value: T | undefined, map: (v: T) => R): R | undefined {
  return value === undefined ? undefined : map(value);
}

/** What KeyAdmin is implemented with. */
export interface AdminDeps {
  admin: AdminServices;
  approvals: ApprovalService;
}

// Every call hands the admin services its authenticated actor: they decide what its scopes allow.
function implementation({ admin: s, approvals }: AdminDeps): Impl {
  const actor = (ctx: HandlerContext) => ctx.values.get(adminActor);
  return {
    async createKeySpace(req, ctx) {
      const space = await s.keySpaces.create(actor(ctx), m.keySpaceSettingsFromProto(req));
      return { keySpace: m.keySpaceToProto(space) };
    },
    async updateKeySpace(req, ctx) {
      const space = await s.keySpaces.update(actor(ctx), req.id, {
        name: req.name,
        scopeModel: opt(req.scopeModel, m.scopeModelFromProto),
        defaultKeyLimits: m.limitSetFromProto(req.defaultKeyLimits),
        defaultWorkspaceLimits: m.limitSetFromProto(req.defaultWorkspaceLimits),
        quotas: opt(req.quotas, m.quotasFromProto),
        rotationGraceSeconds: opt(req.rotationGraceSeconds, Number),
        maxKeyAgeDays: req.maxKeyAgeDays,
        routes: opt(req.routes, (r) => m.routesFromProto(r.rules)),
        creatorRoles: req.creatorRoles?.values,
        forwardCredential: req.forwardCredential,
        credentialSources: req.credentialSources.length
          ? m.sourcesFromProto(req.credentialSources)
          : undefined,
        defaultScopes: req.defaultScopes?.values,
        unmatchedRoutes: m.unmatchedRoutesFromProto(req.unmatchedRoutes),
        caseInsensitiveRoutes: req.caseInsensitiveRoutes,
      });
      return { keySpace: m.keySpaceToProto(space) };
    },
    async getKeySpace(req, ctx) {
      return { keySpace: m.keySpaceToProto(await s.keySpaces.get(actor(ctx), req.id)) };
    },
    async listKeySpaces(req, ctx) {
      const { keySpaces, nextPageToken } = await s.keySpaces.list(actor(ctx), req.pageSize, req.pageToken);
      return { keySpaces: keySpaces.map(m.keySpaceToProto), nextPageToken };
    },
    async createWorkspace(req, ctx) {
      const ws = await s.workspaces.create(actor(ctx), {
        name: req.name,
        keySegment: req.keySegment,
        apiAccess: req.apiAccess,
        plan: req.plan,
        keyLimits: m.limitSetFromProto(req.keyLimits) ?? null,
        workspaceLimits: m.limitSetFromProto(req.workspaceLimits) ?? null,
        maxKeyAgeDays: req.maxKeyAgeDays,
      });
      return { workspace: m.workspaceToProto(ws) };
    },
    async updateWorkspace(req, ctx) {
      const ws = await s.workspaces.update(actor(ctx), req.id, {
        name: req.name,
        status:
          req.status === WorkspaceStatus.UNSPECIFIED
            ? undefined
            : req.status === WorkspaceStatus.ACTIVE
              ? "active"
              : "disabled",
        apiAccess: req.apiAccess,
        plan: req.plan,
        keyLimits: req.clearKeyLimits ? null : m.limitSetFromProto(req.keyLimits),
        workspaceLimits: req.clearWorkspaceLimits ? null : m.limitSetFromProto(req.workspaceLimits),
        maxKeyAgeDays: req.maxKeyAgeDays,
        ownerMemberId: req.ownerMemberId,
      });
      return { workspace: m.workspaceToProto(ws) };
    },
    async getWorkspace(req, ctx) {
      return { workspace: m.workspaceToProto(await s.workspaces.get(actor(ctx), req.id)) };
    },
    async listWorkspaces(req, ctx) {
      const { workspaces, nextPageToken } = await s.workspaces.list(actor(ctx), req.pageSize, req.pageToken);
      return { workspaces: workspaces.map(m.workspaceToProto), nextPageToken };
    },
    async deleteWorkspace(req, ctx) {
      return s.workspaces.delete(actor(ctx), req.id, { force: req.force });
    },
    async addMember(req, ctx) {
      const member = await s.workspaces.addMember(actor(ctx), {
        workspaceId: req.workspaceId,
        name: req.name,
        role: req.role,
        accountOwner: req.accountOwner,
      });
      return { member: m.memberToProto(member) };
    },
    async updateMember(req, ctx) {
      const status =
        req.status === MemberStatus.UNSPECIFIED
          ? undefined
          : req.status === MemberStatus.ACTIVE
            ? "active"
            : "closed";
      const member = await s.workspaces.updateMember(actor(ctx), req.id, { role: req.role, status });
      return { member: m.memberToProto(member) };
    },
    async getMember(req, ctx) {
      return { member: m.memberToProto(await s.workspaces.getMember(actor(ctx), req.id)) };
    },
    async listMembers(req, ctx) {
      return { members: (await s.workspaces.listMembers(actor(ctx), req.workspaceId)).map(m.memberToProto) };
    },
    async createKey(req, ctx) {
      const { key, secret } = await s.keys.create(actor(ctx), {
        keySpaceId: req.keySpaceId,
        workspaceId: req.workspaceId,
        ownerType: req.ownerType === OwnerType.USER ? "user" : "organization",
        memberId: req.memberId,
        name: req.name,
        scopes: req.scopes,
        metadata: (req.metadata ?? {}) as Record<string, unknown>,
        expiresAt: m.dateOrNull(req.expiresAt),
        limits: m.limitSetFromProto(req.limits) ?? null,
        rejectionWebhookUrl: req.rejectionWebhookUrl,
        idempotencyKey: req.idempotencyKey,
      });
      return { key: m.keyToProto(key), secret };
    },
    async getKey(req, ctx) {
      return { key: m.keyToProto(await s.keys.get(actor(ctx), req.id)) };
    },
    async listKeys(req, ctx) {
      const { keys, nextPageToken } = await s.keys.list(actor(ctx), {
        workspaceId: req.workspaceId,
        keySpaceId: req.keySpaceId,
        ownerMemberId: req.ownerMemberId,
        status: req.status === KeyStatus.UNSPECIFIED ? "" : m.keyStatusFromProto(req.status),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { keys: keys.map(m.keyToProto), nextPageToken };
    },
    async updateKey(req, ctx) {
      const key = await s.keys.update(actor(ctx), req.id, {
        name: req.name,
        scopes: req.scopes?.values,
        metadata: req.metadata as Record<string, unknown> | undefined,
        limits: req.clearLimits ? null : m.limitSetFromProto(req.limits),
        rejectionWebhookUrl: req.rejectionWebhookUrl,
        expiresAt: req.clearExpiry ? null : (m.dateOrNull(req.expiresAt) ?? undefined),
      });
      return { key: m.keyToProto(key) };
    },
    async rotateKey(req, ctx) {
      const grace = req.graceSeconds === undefined ? undefined : Number(req.graceSeconds);
      const { key, secret, previous } = await s.keys.rotate(actor(ctx), req.id, grace);
      return { key: m.keyToProto(key), secret, previous: m.keyToProto(previous) };
    },
    async revokeKey(req, ctx) {
      return { key: m.keyToProto(await s.keys.revoke(actor(ctx), req.id)) };
    },
    async activateKey(req, ctx) {
      return { key: m.keyToProto(await s.keys.activate(actor(ctx), req.id)) };
    },
    async deleteKey(req, ctx) {
      await s.keys.delete(actor(ctx), req.id);
      return {};
    },
    async listApprovals(req, ctx) {
      const page = await approvals.list(actor(ctx), {
        workspaceId: req.workspaceId,
        status: m.approvalStatusFromProto(req.status),
        pageSize: req.pageSize,
        pageToken: req.pageToken,
      });
      return { approvals: page.approvals.map(m.approvalToProto), nextPageToken: page.nextPageToken };
    },
    async getApproval(req, ctx) {
      return { approval: m.approvalToProto(await approvals.get(actor(ctx), req.id)) };
    },
    async approveRequest(req, ctx) {
      return { approval: m.approvalToProto(await approvals.approve(actor(ctx), req.id)) };
    },
    async rejectRequest(req, ctx) {
      return { approval: m.approvalToProto(await approvals.reject(actor(ctx), req.id, req.reason)) };
    },
    async getWebhookSigningSecret(_req, ctx) {
      return { secret: s.webhookSigningSecret(actor(ctx)) };
    },
    async createRootKey(req, ctx) {
      const { key, secret } = await s.createRootKey(actor(ctx), req.name, req.scopes);
      return { key: m.keyToProto(key), secret };
    },
    async listAuditEvents(req, ctx) {
      const { events, nextPageToken } = await s.listAuditEvents(actor(ctx), req);
      return { events: events.map(m.auditEventToProto), nextPageToken };
    },
  };
}

/** Registers KeyAdmin on a Connect router; every failure leaves as a ConnectError from the closed Code set. */
export function adminRoutes(deps: AdminDeps, logger: Logger): (router: ConnectRouter) => void {
  const impl = implementation(deps);
  const guarded = Object.fromEntries(
    Object.entries(impl).map(([name, fn]) => [
      name,
      async (req: never, ctx: HandlerContext) => {
        try {
          return await (fn as (r: never, c: HandlerContext) => Promise<unknown>)(req, ctx);
        } catch (error) {
          throw toConnectError(error, logger, ctx.values.get(requestLogFields));
        }
      },
    ]),
  ) as unknown as Impl;
  return (router) => router.service(api.KeyAdmin, guarded);
}
