import type { Key, KeySpace, Limit, Member, Workspace } from "../domain/types.js";

/** A key row as selected with `select k.*`. */
export interface KeyRow {
  id: string;
  key_space_id: string;
  workspace_id: string;
  owner_type: "user" | "organization";
  owner_member_id: string | null;
  name: string;
  display: string;
  digest: Buffer;
  scopes: string[];
  metadata: Record<string, unknown>;
  limits: Limit[] | null;
  rejection_webhook_url: string;
  expires_at: Date | null;
  revoked_at: Date | null;
  rotated_from_id: string | null;
  rotated_to_id: string | null;
  last_used_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

/** A workspace row. */
export interface WorkspaceRow {
  id: string;
  name: string;
  key_segment: string;
  status: "active" | "disabled";
  api_access: boolean;
  plan: string;
  key_limits: Limit[] | null;
  workspace_limits: Limit[] | null;
  max_key_age_days: number;
  owner_member_id: string | null;
  system: boolean;
  created_at: Date;
}

/** A member row. */
export interface MemberRow {
  id: string;
  workspace_id: string;
  name: string;
  role: string;
  status: "active" | "closed";
  created_at: Date;
}

/** A key space row; everything but identity and the route policy lives in `settings`. */
export interface KeySpaceRow {
  id: string;
  name: string;
  system: boolean;
  settings: Omit<KeySpace, "id" | "name" | "createdAt" | "unmatchedRoutes" | "caseInsensitiveRoutes">;
  unmatched_routes: KeySpace["unmatchedRoutes"];
  case_insensitive_routes: boolean;
  created_at: Date;
}

/** Maps a key row to the domain key, deriving its status at `now`. */
export function toKey(row: KeyRow, now = Date.now()): Key {
  const status = row.revoked_at
    ? "revoked"
    : row.expires_at && row.expires_at.getTime() <= now
      ? "expired"
      : "active";
  return {
    id: row.id,
    keySpaceId: row.key_space_id,
    workspaceId: row.workspace_id,
    ownerType: row.owner_type,
    ownerMemberId: row.owner_member_id ?? "",
    name: row.name,
    display: row.display,
    scopes: row.scopes,
    metadata: row.metadata,
    status,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    expiresAt: row.expires_at,
    lastUsedAt: row.last_used_at,
    revokedAt: row.revoked_at,
    rotatedFromId: row.rotated_from_id ?? "",
    rotatedToId: row.rotated_to_id ?? "",
    limits: row.limits,
    rejectionWebhookUrl: row.rejection_webhook_url,
  };
}

/** Maps a workspace row to the domain workspace. */
export function toWorkspace(row: WorkspaceRow): Workspace {
  return {
    id: row.id,
    name: row.name,
    keySegment: row.key_segment,
    status: row.status,
    apiAccess: row.api_access,
    plan: row.plan,
    keyLimits: row.key_limits,
    workspaceLimits: row.workspace_limits,
    maxKeyAgeDays: row.max_key_age_days,
    ownerMemberId: row.owner_member_id ?? "",
    createdAt: row.created_at,
  };
}

/** Maps a member row to the domain member. */
export function toMember(row: MemberRow): Member {
  return {
    id: row.id,
    workspaceId: row.workspace_id,
    name: row.name,
    role: row.role,
    status: row.status,
    createdAt: row.created_at,
  };
}

/** Maps a key space row to the domain key space. */
export function toKeySpace(row: KeySpaceRow): KeySpace {
  return {
    ...row.settings,
    id: row.id,
    name: row.name,
    unmatchedRoutes: row.unmatched_routes,
    caseInsensitiveRoutes: row.case_insensitive_routes,
    createdAt: row.created_at,
  };
}
