import type { AdminActor } from "../domain/admin-actor.js";
import { decideScopes, unknownScope } from "../domain/scopes.js";
import type { ScopeModel } from "../domain/types.js";
import { AdminError, invalid } from "./errors.js";

/** The id of the system key space whose keys (root keys) guard KeyAdmin. */
export const ROOT_KEY_SPACE_ID = "ks_keymesh_root";

/** The id of the system workspace that holds the root keys. */
export const ROOT_WORKSPACE_ID = "ws_keymesh";

/** The admin scopes, weakest first; each one includes those before it. */
export const ADMIN_SCOPES = ["admin:read", "admin:write", "admin:root"] as const;

/** One admin scope. */
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/**
 * The system key space's scope model, fixed in code: what a caller holds and may grant is judged by this, so no
 * stored setting can widen it.
 */
export const ADMIN_SCOPE_MODEL: ScopeModel = Object.freeze({
  scopes: [],
  hierarchies: [[...ADMIN_SCOPES]],
  ladders: [],
  fullAccessScope: "",
});

/**
 * Where a call's target lies. `system`: keymesh's own objects (root keys, the system key space and workspace,
 * their audit events, the webhook signing secret). `customer`: everything else.
 */
export type AdminTarget = "system" | "customer";

/** What a rule asks of the caller: an admin scope, or `never` when no caller may do it through KeyAdmin. */
export type Requirement = AdminScope | "never";

/** A method's requirement per kind of target; a missing kind is a target the method cannot have. */
export type AdminRule = Readonly<Partial<Record<AdminTarget, Requirement>>>;

/**
 * The decision table: every KeyAdmin method and what it requires of the caller's own scopes, by where its target
 * lies. Root keys are managed and read only with admin:root; the system workspace, members and approvals in it,
 * and the system key space's settings cannot be changed (nor the workspace deleted) through the API at all.
 */
export const ADMIN_POLICY = {
  CreateKeySpace: { customer: "admin:write" },
  UpdateKeySpace: { customer: "admin:write", system: "never" },
  // The system key space's definition holds no credential and is fixed by migration, so readers may see it.
  GetKeySpace: { customer: "admin:read", system: "admin:read" },
  ListKeySpaces: { customer: "admin:read" },

  CreateWorkspace: { customer: "admin:write" },
  UpdateWorkspace: { customer: "admin:write", system: "never" },
  GetWorkspace: { customer: "admin:read", system: "never" },
  ListWorkspaces: { customer: "admin:read" },
  DeleteWorkspace: { customer: "admin:write", system: "never" },
  AddMember: { customer: "admin:write", system: "never" },
  UpdateMember: { customer: "admin:write", system: "never" },
  GetMember: { customer: "admin:read", system: "never" },
  ListMembers: { customer: "admin:read", system: "never" },

  // Root keys are created only by CreateRootKey, which checks the scopes granted.
  CreateKey: { customer: "admin:write", system: "never" },
  GetKey: { customer: "admin:read", system: "admin:root" },
  ListKeys: { customer: "admin:read", system: "admin:root" },
  UpdateKey: { customer: "admin:write", system: "admin:root" },
  RotateKey: { customer: "admin:write", system: "admin:root" },
  RevokeKey: { customer: "admin:write", system: "admin:root" },
  ActivateKey: { customer: "admin:write", system: "admin:root" },
  DeleteKey: { customer: "admin:write", system: "admin:root" },

  // Root keys have no approval levels, so approvals are customer objects only.
  ListApprovals: { customer: "admin:read", system: "never" },
  GetApproval: { customer: "admin:read", system: "never" },
  ApproveRequest: { customer: "admin:write", system: "never" },
  RejectRequest: { customer: "admin:write", system: "never" },
  GetWebhookSigningSecret: { system: "admin:root" },

  CreateRootKey: { system: "admin:root" },
  // Events about system targets (root keys above all) are left out of the list for callers without admin:root.
  ListAuditEvents: { customer: "admin:read", system: "admin:root" },
} as const satisfies Record<string, AdminRule>;

/** A KeyAdmin method, by its RPC name. */
export type AdminOperation = keyof typeof ADMIN_POLICY;

/** The actor of keymesh's own commands (bootstrap): they run with the full authority of admin:root. */
export function internalActor(keyId: string): AdminActor {
  return { keyId, scopes: ["admin:root"] };
}

/** Whether the caller holds `scope`, counting the hierarchy: admin:root holds admin:write, which holds admin:read. */
export function holds(actor: AdminActor, scope: string): boolean {
  return decideScopes(ADMIN_SCOPE_MODEL, actor.scopes, [scope]).kind === "granted";
}

const rank = (need: Requirement) => (need === "never" ? ADMIN_SCOPES.length : ADMIN_SCOPES.indexOf(need));

function held(actor: AdminActor): string {
  const admin = actor.scopes.filter((s) => (ADMIN_SCOPES as readonly string[]).includes(s));
  return admin.length > 0 ? admin.join(", ") : "no admin scope";
}

function deny(
  operation: AdminOperation,
  target: AdminTarget,
  need: Requirement | undefined,
  actor: AdminActor,
) {
  const where =
    target === "system" ? " on keymesh's own objects (root keys, the system key space and workspace)" : "";
  if (need === undefined || need === "never") {
    return new AdminError("permission_denied", `${operation}${where} is not allowed through KeyAdmin`);
  }
  return new AdminError(
    "permission_denied",
    `${operation}${where} needs ${need}; the calling key holds ${held(actor)}`,
  );
}

/** Whether the caller may perform `operation` on a target of kind `target`. */
export function permits(actor: AdminActor, operation: AdminOperation, target: AdminTarget): boolean {
  const need: Requirement | undefined = (ADMIN_POLICY[operation] as AdminRule)[target];
  return need !== undefined && need !== "never" && holds(actor, need);
}

/** Refuses the call (PERMISSION_DENIED) unless the caller may perform `operation` on a target of kind `target`. */
export function authorize(actor: AdminActor, operation: AdminOperation, target: AdminTarget): void {
  if (!permits(actor, operation, target)) {
    throw deny(operation, target, (ADMIN_POLICY[operation] as AdminRule)[target], actor);
  }
}

/**
 * Refuses, before anything is looked up, a caller that lacks even the least scope `operation` needs on any target,
 * so that such a caller learns nothing about which ids exist.
 */
export function authorizeCall(actor: AdminActor, operation: AdminOperation): void {
  const rule: AdminRule = ADMIN_POLICY[operation];
  const targets = (Object.keys(rule) as AdminTarget[]).sort((a, b) => rank(rule[a]!) - rank(rule[b]!));
  authorize(actor, operation, targets[0]!);
}

/**
 * Refuses to give a root key any scope outside the admin vocabulary (INVALID_ARGUMENT naming `scopes`) or any scope
 * the caller does not hold itself (PERMISSION_DENIED): no caller hands out more than it has.
 */
export function authorizeGrant(actor: AdminActor, scopes: readonly string[]): void {
  const unknown = unknownScope(ADMIN_SCOPE_MODEL, scopes);
  if (unknown !== undefined) {
    throw invalid(
      "scopes",
      `${JSON.stringify(unknown)} is not an admin scope; root keys carry ${ADMIN_SCOPES.join(", ")}`,
    );
  }
  const beyond = scopes.find((scope) => !holds(actor, scope));
  if (beyond !== undefined) {
    throw new AdminError(
      "permission_denied",
      `scopes: the calling key cannot grant ${beyond}; it holds ${held(actor)}`,
    );
  }
}
