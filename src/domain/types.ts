/** The key layouts a key space can issue. */
export type KeyStyle = "single" | "id_secret" | "prefix_dot_secret";

/** One place a presented key may be read from. */
export type CredentialSource = { kind: "bearer" } | { kind: "basic" } | { kind: "header"; header: string };

/** How keys of a key space are written. */
export interface KeyFormat {
  prefix: string;
  workspaceSegment: boolean;
  style: KeyStyle;
  secretBytes: number;
  idPrefix: string;
}

/** A token bucket: `capacity` tokens refilled evenly over `periodSeconds`. */
export interface Limit {
  name: string;
  capacity: number;
  periodSeconds: number;
}

/** Per-resource levels, lowest first, with approval levels mapped to the level they stand for. */
export interface ScopeLadder {
  name: string;
  resources: string[];
  levels: string[];
  approvalOf: Record<string, string>;
  adminOnly: boolean;
}

/** The scope vocabulary of a key space and how scopes imply one another. */
export interface ScopeModel {
  scopes: string[];
  hierarchies: string[][];
  ladders: ScopeLadder[];
  fullAccessScope: string;
}

/** Key-count quotas; 0 means unlimited. */
export interface Quotas {
  maxKeysPerWorkspace: number;
  maxUserKeysPerMember: number;
  maxOrganizationKeysPerWorkspace: number;
}

/** Method plus path pattern mapped to required scopes and a rate-limit cost. */
export interface RouteRule {
  method: string;
  path: string;
  scopes: string[];
  cost: number;
}

/** What a key space with route rules does with a request path that no rule matches. */
export type UnmatchedRoutes = "allow" | "deny";

/** The policy for one family of keys. */
export interface KeySpace {
  id: string;
  name: string;
  format: KeyFormat;
  credentialSources: CredentialSource[];
  scopeModel: ScopeModel;
  defaultKeyLimits: Limit[];
  defaultWorkspaceLimits: Limit[];
  quotas: Quotas;
  rotationGraceSeconds: number;
  maxKeyAgeDays: number;
  routes: RouteRule[];
  /** With route rules: whether a path no rule matches needs `defaultScopes` ("allow") or is refused ("deny"). */
  unmatchedRoutes: UnmatchedRoutes;
  /** Compare request paths with route rules ignoring ASCII case, for upstreams that route that way. */
  caseInsensitiveRoutes: boolean;
  creatorRoles: string[];
  forwardCredential: boolean;
  keyAgeWarningDays: number;
  defaultScopes: string[];
  createdAt: Date;
}

/** Whether a workspace may be used. */
export type WorkspaceStatus = "active" | "disabled";

/** A customer account, organization or brand. */
export interface Workspace {
  id: string;
  name: string;
  keySegment: string;
  status: WorkspaceStatus;
  apiAccess: boolean;
  plan: string;
  keyLimits: Limit[] | null;
  workspaceLimits: Limit[] | null;
  maxKeyAgeDays: number;
  ownerMemberId: string;
  createdAt: Date;
}

/** Whether a member's account is open. */
export type MemberStatus = "active" | "closed";

/** A user of a workspace, with a role. */
export interface Member {
  id: string;
  workspaceId: string;
  name: string;
  role: string;
  status: MemberStatus;
  createdAt: Date;
}

/** Who a key belongs to. */
export type OwnerType = "user" | "organization";

/** A key's stored lifecycle state; `expired` is derived from `expiresAt`. */
export type KeyStatus = "active" | "revoked" | "expired";

/** A stored key, without its secret. */
export interface Key {
  id: string;
  keySpaceId: string;
  workspaceId: string;
  ownerType: OwnerType;
  ownerMemberId: string;
  name: string;
  display: string;
  scopes: string[];
  metadata: Record<string, unknown>;
  status: KeyStatus;
  createdAt: Date;
  updatedAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
  rotatedFromId: string;
  rotatedToId: string;
  limits: Limit[] | null;
  rejectionWebhookUrl: string;
}
