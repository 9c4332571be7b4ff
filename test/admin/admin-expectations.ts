/**
 * The authorization rules KeyAdmin must follow, written out for the tests independently of src/admin/admin-policy.ts:
 * for every method, the least admin scope a caller must hold when the target is a customer's object and when it is
 * one of keymesh's own (root keys, the system key space and workspace, the webhook signing secret). `nobody` means
 * no caller may; a missing entry means the method cannot have such a target.
 */
export type Need = "admin:read" | "admin:write" | "admin:root" | "nobody";

/** Where a call's target lies. */
export type TargetKind = "customer" | "system";

export const EXPECTED: Record<string, Partial<Record<TargetKind, Need>>> = {
  CreateKeySpace: { customer: "admin:write" },
  UpdateKeySpace: { customer: "admin:write", system: "nobody" },
  GetKeySpace: { customer: "admin:read", system: "admin:read" },
  ListKeySpaces: { customer: "admin:read" },
  CreateWorkspace: { customer: "admin:write" },
  UpdateWorkspace: { customer: "admin:write", system: "nobody" },
  GetWorkspace: { customer: "admin:read", system: "nobody" },
  ListWorkspaces: { customer: "admin:read" },
  // Deleting the system workspace would take every root key with it.
  DeleteWorkspace: { customer: "admin:write", system: "nobody" },
  AddMember: { customer: "admin:write", system: "nobody" },
  UpdateMember: { customer: "admin:write", system: "nobody" },
  GetMember: { customer: "admin:read", system: "nobody" },
  ListMembers: { customer: "admin:read", system: "nobody" },
  CreateKey: { customer: "admin:write", system: "nobody" },
  GetKey: { customer: "admin:read", system: "admin:root" },
  ListKeys: { customer: "admin:read", system: "admin:root" },
  UpdateKey: { customer: "admin:write", system: "admin:root" },
  RotateKey: { customer: "admin:write", system: "admin:root" },
  RevokeKey: { customer: "admin:write", system: "admin:root" },
  ActivateKey: { customer: "admin:write", system: "admin:root" },
  DeleteKey: { customer: "admin:write", system: "admin:root" },
  ListApprovals: { customer: "admin:read", system: "nobody" },
  GetApproval: { customer: "admin:read", system: "nobody" },
  ApproveRequest: { customer: "admin:write", system: "nobody" },
  RejectRequest: { customer: "admin:write", system: "nobody" },
  GetWebhookSigningSecret: { system: "admin:root" },
  CreateRootKey: { system: "admin:root" },
  ListAuditEvents: { customer: "admin:read", system: "admin:root" },
};

/** The admin scopes, weakest first: holding one means holding every one before it. */
export const LADDER = ["admin:read", "admin:write", "admin:root"] as const;

/** Every root scope set a caller can hold: each subset of the three admin scopes, the empty one included. */
export const SCOPE_SETS: readonly (readonly string[])[] = [
  [],
  ["admin:read"],
  ["admin:write"],
  ["admin:root"],
  ["admin:read", "admin:write"],
  ["admin:read", "admin:root"],
  ["admin:write", "admin:root"],
  ["admin:read", "admin:write", "admin:root"],
];

/** The highest rung of the ladder `scopes` reach, or -1; anything off the ladder counts for nothing. */
export function rung(scopes: readonly string[]): number {
  return Math.max(-1, ...scopes.map((s) => (LADDER as readonly string[]).indexOf(s)));
}

/** Whether a caller holding `scopes` meets `need`. */
export function meets(scopes: readonly string[], need: Need | undefined): boolean {
  if (need === undefined || need === "nobody") return false;
  return rung(scopes) >= LADDER.indexOf(need);
}
