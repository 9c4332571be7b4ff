import { create } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { CreateKeySpaceRequest } from "../../../gen/keymesh/v1/admin_pb.js";
import * as pb from "../../../gen/keymesh/v1/types_pb.js";
import { AuditEventSchema } from "../../../gen/keymesh/v1/types_pb.js";
import type { Approval as DomainApproval } from "../../admin/approvals.js";
import type { AuditEvent as DomainAuditEvent } from "../../admin/audit.js";
import type { KeySpaceSettings } from "../../admin/key-spaces.js";
import type * as d from "../../domain/types.js";

const ts = (date: Date | null | undefined): Timestamp | undefined =>
  date ? timestampFromDate(date) : undefined;

/** Converts an optional proto timestamp to a Date or null. */
export const dateOrNull = (t: Timestamp | undefined): Date | null => (t ? timestampDate(t) : null);

/** Converts proto limits (uint64 as bigint) to domain limits. */
export function limitsFromProto(limits: readonly pb.Limit[]): d.Limit[] {
  return limits.map((l) => ({
    name: l.name,
    capacity: Number(l.capacity),
    periodSeconds: Number(l.periodSeconds),
  }));
}

/** Converts an optional LimitSet: absent means inherit (undefined), present means override. */
export function limitSetFromProto(set: pb.LimitSet | undefined): d.Limit[] | undefined {
  return set ? limitsFromProto(set.limits) : undefined;
}

function limitsToProto(limits: readonly d.Limit[]): pb.Limit[] {
  return limits.map((l) =>
    create(pb.LimitSchema, {
      name: l.name,
      capacity: BigInt(l.capacity),
      periodSeconds: BigInt(l.periodSeconds),
    }),
  );
}

const limitSet = (limits: d.Limit[] | null) =>
  limits ? create(pb.LimitSetSchema, { limits: limitsToProto(limits) }) : undefined;

const styles: Record<pb.KeyStyle, d.KeyStyle | undefined> = {
  [pb.KeyStyle.UNSPECIFIED]: undefined,
  [pb.KeyStyle.SINGLE]: "single",
  [pb.KeyStyle.ID_SECRET]: "id_secret",
  [pb.KeyStyle.PREFIX_DOT_SECRET]: "prefix_dot_secret",
};

const styleToProto: Record<d.KeyStyle, pb.KeyStyle> = {
  single: pb.KeyStyle.SINGLE,
  id_secret: pb.KeyStyle.ID_SECRET,
  prefix_dot_secret: pb.KeyStyle.PREFIX_DOT_SECRET,
};

/** Converts proto credential sources to domain ones. */
export function sourcesFromProto(sources: readonly pb.CredentialSource[]): d.CredentialSource[] {
  return sources.map((s): d.CredentialSource => {
    if (s.kind === pb.CredentialSourceKind.BEARER) return { kind: "bearer" };
    if (s.kind === pb.CredentialSourceKind.BASIC) return { kind: "basic" };
    return { kind: "header", header: s.header.toLowerCase() };
  });
}

/** Converts a proto scope model to the domain one. */
export function scopeModelFromProto(m: pb.ScopeModel | undefined): d.ScopeModel {
  return {
    scopes: m?.scopes ?? [],
    hierarchies: (m?.hierarchies ?? []).map((h) => h.scopes),
    ladders: (m?.ladders ?? []).map((l) => ({
      name: l.name,
      resources: l.resources,
      levels: l.levels,
      approvalOf: { ...l.approvalOf },
      adminOnly: l.adminOnly,
    })),
    fullAccessScope: m?.fullAccessScope ?? "",
  };
}

/** Converts proto quotas to domain ones. */
export function quotasFromProto(q: pb.Quotas | undefined): d.Quotas {
  return {
    maxKeysPerWorkspace: q?.maxKeysPerWorkspace ?? 0,
    maxUserKeysPerMember: q?.maxUserKeysPerMember ?? 0,
    maxOrganizationKeysPerWorkspace: q?.maxOrganizationKeysPerWorkspace ?? 0,
  };
}

/** Converts proto route rules to domain ones. */
export function routesFromProto(routes: readonly pb.RouteRule[]): d.RouteRule[] {
  return routes.map((r) => ({ method: r.method || "*", path: r.path, scopes: r.scopes, cost: r.cost }));
}

/** Converts the unmatched-route setting; UNSPECIFIED is undefined (create then denies, update keeps). */
export function unmatchedRoutesFromProto(u: pb.UnmatchedRoutes): d.UnmatchedRoutes | undefined {
  if (u === pb.UnmatchedRoutes.ALLOW) return "allow";
  if (u === pb.UnmatchedRoutes.DENY) return "deny";
  return undefined;
}

/** Converts a CreateKeySpaceRequest to key space settings. */
export function keySpaceSettingsFromProto(req: CreateKeySpaceRequest): KeySpaceSettings {
  const f = req.format!;
  return {
    name: req.name,
    format: {
      prefix: f.prefix,
      workspaceSegment: f.workspaceSegment,
      style: styles[f.style] ?? "single",
      secretBytes: f.secretBytes,
      idPrefix: f.idPrefix,
    },
    credentialSources: sourcesFromProto(req.credentialSources),
    scopeModel: scopeModelFromProto(req.scopeModel),
    defaultKeyLimits: limitsFromProto(req.defaultKeyLimits),
    defaultWorkspaceLimits: limitsFromProto(req.defaultWorkspaceLimits),
    quotas: quotasFromProto(req.quotas),
    rotationGraceSeconds: Number(req.rotationGraceSeconds),
    maxKeyAgeDays: req.maxKeyAgeDays,
    routes: routesFromProto(req.routes),
    creatorRoles: req.creatorRoles,
    forwardCredential: req.forwardCredential,
    keyAgeWarningDays: req.keyAgeWarningDays,
    defaultScopes: req.defaultScopes,
    unmatchedRoutes: unmatchedRoutesFromProto(req.unmatchedRoutes) ?? "deny",
    caseInsensitiveRoutes: req.caseInsensitiveRoutes,
  };
}

/** Converts a domain key space to proto. */
export function keySpaceToProto(s: d.KeySpace): pb.KeySpace {
  return create(pb.KeySpaceSchema, {
    id: s.id,
    name: s.name,
    format: { ...s.format, style: styleToProto[s.format.style] },
    credentialSources: s.credentialSources.map((c) => ({
      kind:
        c.kind === "bearer"
          ? pb.CredentialSourceKind.BEARER
          : c.kind === "basic"
            ? pb.CredentialSourceKind.BASIC
            : pb.CredentialSourceKind.HEADER,
      header: c.kind === "header" ? c.header : "",
    })),
    scopeModel: {
      scopes: s.scopeModel.scopes,
      hierarchies: s.scopeModel.hierarchies.map((scopes) => ({ scopes })),
      ladders: s.scopeModel.ladders,
      fullAccessScope: s.scopeModel.fullAccessScope,
    },
    defaultKeyLimits: limitsToProto(s.defaultKeyLimits),
    defaultWorkspaceLimits: limitsToProto(s.defaultWorkspaceLimits),
    quotas: s.quotas,
    rotationGraceSeconds: BigInt(s.rotationGraceSeconds),
    maxKeyAgeDays: s.maxKeyAgeDays,
    routes: s.routes,
    creatorRoles: s.creatorRoles,
    forwardCredential: s.forwardCredential,
    keyAgeWarningDays: s.keyAgeWarningDays,
    defaultScopes: s.defaultScopes,
    unmatchedRoutes: s.unmatchedRoutes === "allow" ? pb.UnmatchedRoutes.ALLOW : pb.UnmatchedRoutes.DENY,
    caseInsensitiveRoutes: s.caseInsensitiveRoutes,
    createdAt: ts(s.createdAt),
  });
}

/** Converts a domain workspace to proto. */
export function workspaceToProto(w: d.Workspace): pb.Workspace {
  return create(pb.WorkspaceSchema, {
    id: w.id,
    name: w.name,
    keySegment: w.keySegment,
    status: w.status === "active" ? pb.WorkspaceStatus.ACTIVE : pb.WorkspaceStatus.DISABLED,
    apiAccess: w.apiAccess,
    plan: w.plan,
    keyLimits: limitSet(w.keyLimits),
    workspaceLimits: limitSet(w.workspaceLimits),
    maxKeyAgeDays: w.maxKeyAgeDays,
    ownerMemberId: w.ownerMemberId,
    createdAt: ts(w.createdAt),
  });
}

/** Converts a domain member to proto. */
export function memberToProto(m: d.Member): pb.Member {
  return create(pb.MemberSchema, {
    id: m.id,
    workspaceId: m.workspaceId,
    name: m.name,
    role: m.role,
    status: m.status === "active" ? pb.MemberStatus.ACTIVE : pb.MemberStatus.CLOSED,
    createdAt: ts(m.createdAt),
  });
}

const keyStatus = {
  active: pb.KeyStatus.ACTIVE,
  revoked: pb.KeyStatus.REVOKED,
  expired: pb.KeyStatus.EXPIRED,
};

/** Converts a proto key status filter to the domain one ("" for any). */
export function keyStatusFromProto(status: pb.KeyStatus): d.KeyStatus | "" {
  return (Object.entries(keyStatus).find(([, v]) => v === status)?.[0] as d.KeyStatus | undefined) ?? "";
}

/** Converts a domain key to proto; it never carries a secret. */
export function keyToProto(k: d.Key): pb.Key {
  return create(pb.KeySchema, {
    id: k.id,
    keySpaceId: k.keySpaceId,
    workspaceId: k.workspaceId,
    ownerType: k.ownerType === "user" ? pb.OwnerType.USER : pb.OwnerType.ORGANIZATION,
    ownerMemberId: k.ownerMemberId,
    name: k.name,
    display: k.display,
    scopes: k.scopes,
    metadata: k.metadata as never,
    status: keyStatus[k.status],
    createdAt: ts(k.createdAt),
    updatedAt: ts(k.updatedAt),
    expiresAt: ts(k.expiresAt),
    lastUsedAt: ts(k.lastUsedAt),
    revokedAt: ts(k.revokedAt),
    rotatedFromId: k.rotatedFromId,
    rotatedToId: k.rotatedToId,
    limits: limitSet(k.limits),
    rejectionWebhookUrl: k.rejectionWebhookUrl,
  });
}

/** Converts a recorded audit event to proto. */
export function auditEventToProto(e: DomainAuditEvent): pb.AuditEvent {
  return create(AuditEventSchema, {
    id: e.id,
    at: ts(e.at),
    actor: e.actor,
    action: e.action,
    targetType: e.targetType,
    targetId: e.targetId,
    before: (e.before ?? undefined) as never,
    after: (e.after ?? undefined) as never,
  });
}

const approvalStatus: Record<DomainApproval["status"], pb.ApprovalStatus> = {
  pending: pb.ApprovalStatus.PENDING,
  approved: pb.ApprovalStatus.APPROVED,
  rejected: pb.ApprovalStatus.REJECTED,
  used: pb.ApprovalStatus.USED,
  expired: pb.ApprovalStatus.EXPIRED,
};

/** Converts a proto approval status filter to the domain one ("" for any). */
export function approvalStatusFromProto(status: pb.ApprovalStatus): string {
  return (Object.entries(approvalStatus).find(([, v]) => v === status)?.[0] as string | undefined) ?? "";
}

/** Converts an approval to proto. */
export function approvalToProto(a: DomainApproval): pb.Approval {
  return create(pb.ApprovalSchema, {
    id: a.id,
    keyId: a.keyId,
    workspaceId: a.workspaceId,
    method: a.method,
    path: a.path,
    requiredScope: a.requiredScope,
    status: approvalStatus[a.status],
    reason: a.reason,
    headers: a.headers,
    body: a.body ?? new Uint8Array(),
    createdAt: ts(a.createdAt),
    expiresAt: ts(a.expiresAt),
    decidedAt: ts(a.decidedAt),
  });
}
