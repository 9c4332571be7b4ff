import { type DescMessage, type JsonValue, type MessageShape, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampDate } from "@bufbuild/protobuf/wkt";
import {
  type Approval,
  ApprovalSchema,
  ApprovalStatus,
  type AuditEvent,
  AuditEventSchema,
  CredentialSourceKind,
  type Key,
  KeySchema,
  type KeySpace,
  KeySpaceSchema,
  KeyStatus,
  KeyStyle,
  type Limit,
  type Member,
  MemberSchema,
  MemberStatus,
  OwnerType,
  type Workspace,
  WorkspaceSchema,
  WorkspaceStatus,
} from "../../gen/keymesh/v1/types_pb.js";
import type { Column, View } from "./output.js";

/** A timestamp as `2025-01-02T03:04:05Z`, or empty. */
export function when(ts: Timestamp | undefined): string {
  return ts
    ? timestampDate(ts)
        .toISOString()
        .replace(/\.\d{3}Z$/, "Z")
    : "";
}

/** An enum value's name without its prefix, lower case: `KeyStatus.ACTIVE` → `active`. */
export function short(names: Record<number, string>, value: number): string {
  return (names[value] ?? String(value)).toLowerCase().replace(/_/g, "-");
}

/** Limits as `minute=120/60s, day=50000/86400s`. */
export function limitsText(limits: readonly Limit[] | undefined): string {
  if (!limits) return "";
  return limits.map((l) => `${l.name}=${l.capacity}/${l.periodSeconds}s`).join(", ");
}

const col = <T>(header: string, value: (item: T) => string): Column<T> => ({ header, value });
/** The proto JSON mapping with every field present (false, 0, []), so that scripts never meet a missing field. */
export function protoJson<S extends DescMessage>(schema: S, item: MessageShape<S>): JsonValue {
  return toJson(schema, item, { alwaysEmitImplicit: true });
}

const jsonOf =
  <S extends DescMessage>(schema: S) =>
  (item: MessageShape<S>) =>
    protoJson(schema, item);

/** Key spaces: the layout and the size of the policy; the whole policy is in `keyspaces get -o yaml`. */
export const keySpaceView: View<KeySpace> = {
  columns: [
    col("ID", (s) => s.id),
    col("NAME", (s) => s.name),
    col("FORMAT", (s) => {
      const start = s.format?.prefix || s.format?.idPrefix;
      return `${start ? `${start}… ` : ""}${short(KeyStyle, s.format?.style ?? 0)}`;
    }),
    col("CREDENTIALS", (s) =>
      s.credentialSources
        .map((c) => (c.kind === CredentialSourceKind.HEADER ? c.header : short(CredentialSourceKind, c.kind)))
        .join(", "),
    ),
    col("ROUTES", (s) => String(s.routes.length)),
    col("CREATED", (s) => when(s.createdAt)),
  ],
  detail: [
    col("KEY LIMITS", (s) => limitsText(s.defaultKeyLimits)),
    col("WORKSPACE LIMITS", (s) => limitsText(s.defaultWorkspaceLimits)),
    col("ROTATION GRACE", (s) => `${s.rotationGraceSeconds}s`),
    col("MAX KEY AGE", (s) => (s.maxKeyAgeDays ? `${s.maxKeyAgeDays}d` : "none")),
  ],
  json: jsonOf(KeySpaceSchema),
};

export const workspaceView: View<Workspace> = {
  columns: [
    col("ID", (w) => w.id),
    col("NAME", (w) => w.name),
    col("SEGMENT", (w) => w.keySegment),
    col("STATUS", (w) => short(WorkspaceStatus, w.status)),
    col("API ACCESS", (w) => (w.apiAccess ? "yes" : "no")),
    col("PLAN", (w) => w.plan),
    col("CREATED", (w) => when(w.createdAt)),
  ],
  detail: [
    col("OWNER", (w) => w.ownerMemberId),
    col("KEY LIMITS", (w) => (w.keyLimits ? limitsText(w.keyLimits.limits) || "none" : "inherited")),
    col("WORKSPACE LIMITS", (w) =>
      w.workspaceLimits ? limitsText(w.workspaceLimits.limits) || "none" : "inherited",
    ),
    col("MAX KEY AGE", (w) => (w.maxKeyAgeDays ? `${w.maxKeyAgeDays}d` : "inherited")),
  ],
  json: jsonOf(WorkspaceSchema),
};

export const memberView: View<Member> = {
  columns: [
    col("ID", (m) => m.id),
    col("WORKSPACE", (m) => m.workspaceId),
    col("NAME", (m) => m.name),
    col("ROLE", (m) => m.role),
    col("STATUS", (m) => short(MemberStatus, m.status)),
    col("CREATED", (m) => when(m.createdAt)),
  ],
  json: jsonOf(MemberSchema),
};

export const keyView: View<Key> = {
  columns: [
    col("ID", (k) => k.id),
    col("NAME", (k) => k.name),
    col("DISPLAY", (k) => k.display),
    col("STATUS", (k) => short(KeyStatus, k.status)),
    col("OWNER", (k) => (k.ownerType === OwnerType.USER ? `user ${k.ownerMemberId}` : "organization")),
    col("SCOPES", (k) => k.scopes.join(", ")),
    col("CREATED", (k) => when(k.createdAt)),
    col("LAST USED", (k) => when(k.lastUsedAt)),
  ],
  detail: [
    col("KEY SPACE", (k) => k.keySpaceId),
    col("WORKSPACE", (k) => k.workspaceId),
    col("EXPIRES", (k) => when(k.expiresAt) || "never"),
    col("LIMITS", (k) => (k.limits ? limitsText(k.limits.limits) || "none" : "inherited")),
    col("ROTATED FROM", (k) => k.rotatedFromId),
    col("ROTATED TO", (k) => k.rotatedToId),
    col("REVOKED", (k) => when(k.revokedAt)),
    col("WEBHOOK", (k) => k.rejectionWebhookUrl),
  ],
  json: jsonOf(KeySchema),
};

export const approvalView: View<Approval> = {
  columns: [
    col("ID", (a) => a.id),
    col("STATUS", (a) => short(ApprovalStatus, a.status)),
    col("METHOD", (a) => a.method),
    col("PATH", (a) => a.path),
    col("SCOPE", (a) => a.requiredScope),
    col("KEY", (a) => a.keyId),
    col("CREATED", (a) => when(a.createdAt)),
    col("EXPIRES", (a) => when(a.expiresAt)),
  ],
  detail: [
    col("WORKSPACE", (a) => a.workspaceId),
    col("DECIDED", (a) => when(a.decidedAt)),
    col("REASON", (a) => a.reason),
    col("HEADERS", (a) =>
      Object.entries(a.headers)
        .map(([k, v]) => `${k}: ${v}`)
        .join("\n"),
    ),
    col("BODY", (a) => bodyText(a.body)),
  ],
  json: jsonOf(ApprovalSchema),
};

/** A request body as text when it is UTF-8, else as base64 with a marker. */
export function bodyText(body: Uint8Array): string {
  if (body.length === 0) return "";
  const text = Buffer.from(body).toString("utf8");
  return Buffer.from(text, "utf8").equals(Buffer.from(body))
    ? text
    : `base64:${Buffer.from(body).toString("base64")}`;
}

export const auditView: View<AuditEvent> = {
  columns: [
    col("AT", (e) => when(e.at)),
    col("ACTOR", (e) => e.actor),
    col("ACTION", (e) => e.action),
    col("TARGET", (e) => `${e.targetType} ${e.targetId}`),
  ],
  json: jsonOf(AuditEventSchema),
};
