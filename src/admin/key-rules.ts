import { createHash } from "node:crypto";
import type { TransactionSql } from "postgres";
import type { KeySpace } from "../domain/types.js";
import type { MemberRow } from "../store/rows.js";
import { AdminError, invalid } from "./errors.js";
import type { NewKey } from "./key-input.js";

/** Refuses a webhook URL that is not http or https. */
export function checkWebhook(url: string): void {
  if (!url) return;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid("rejection_webhook_url", "is not a valid URL");
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    throw invalid("rejection_webhook_url", "must be an http or https URL");
  }
}

/** The digest of a create request, to tell a retry from a different request under one idempotency key. */
export function fingerprint(input: NewKey): Buffer {
  const { idempotencyKey: _, ...rest } = input;
  return createHash("sha256").update(JSON.stringify(rest)).digest();
}

/** Refuses a create that would exceed the key space's quotas; call with the workspace row locked. */
export async function checkQuota(tx: TransactionSql, space: KeySpace, input: NewKey): Promise<void> {
  const { maxKeysPerWorkspace, maxUserKeysPerMember, maxOrganizationKeysPerWorkspace } = space.quotas;
  // Keys replaced by rotation do not count: rotating never needs a free slot.
  const [counts] = await tx<{ total: number; user_keys: number; org_keys: number }[]>`
    select count(*)::int as total,
           count(*) filter (where owner_type = 'user' and owner_member_id = ${input.memberId || null})::int as user_keys,
           count(*) filter (where owner_type = 'organization')::int as org_keys
    from keys where workspace_id = ${input.workspaceId} and key_space_id = ${space.id} and rotated_to_id is null`;
  const c = counts!;
  if (maxKeysPerWorkspace && c.total >= maxKeysPerWorkspace) {
    throw new AdminError(
      "resource_exhausted",
      `the workspace already has ${c.total} of ${maxKeysPerWorkspace} keys`,
    );
  }
  if (input.ownerType === "user" && maxUserKeysPerMember && c.user_keys >= maxUserKeysPerMember) {
    throw new AdminError(
      "resource_exhausted",
      `the member already has ${c.user_keys} of ${maxUserKeysPerMember} user keys`,
    );
  }
  if (
    input.ownerType === "organization" &&
    maxOrganizationKeysPerWorkspace &&
    c.org_keys >= maxOrganizationKeysPerWorkspace
  ) {
    throw new AdminError(
      "resource_exhausted",
      `the workspace already has ${c.org_keys} of ${maxOrganizationKeysPerWorkspace} organization keys`,
    );
  }
}

/** Checks the key's owner and that the creating member's role may create keys. */
export async function checkOwner(tx: TransactionSql, space: KeySpace, input: NewKey): Promise<void> {
  if (input.ownerType === "user" && !input.memberId) throw invalid("member_id", "is required for user keys");
  if (space.creatorRoles.length > 0 && !input.memberId) {
    throw invalid("member_id", "is required: this key space limits key creation to some roles");
  }
  if (!input.memberId) return;
  const [member] = await tx<MemberRow[]>`select * from members where id = ${input.memberId}`;
  if (!member || member.workspace_id !== input.workspaceId)
    throw invalid("member_id", "is not a member of the workspace");
  if (member.status !== "active")
    throw new AdminError("failed_precondition", "the member's account is closed");
  if (space.creatorRoles.length > 0 && !space.creatorRoles.includes(member.role)) {
    throw new AdminError(
      "permission_denied",
      `members with role ${JSON.stringify(member.role)} may not create keys; allowed: ${space.creatorRoles.join(", ")}`,
    );
  }
}
