import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Key, KeySpace, Workspace } from "../../gen/keymesh/v1/types_pb.js";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import type { Admin } from "./api.js";
import { confirmDialog, formDialog, secretDialog } from "./dom.js";
import { limitsText, parseLimits, parseScopes } from "./format.js";

/** What a finished action tells the screen: a message for the status line, or nothing when cancelled. */
export type Outcome = string | undefined;

const limitSet = (text: string) => ({ $typeName: "keymesh.v1.LimitSet" as const, limits: parseLimits(text) });

/** Creates a key and shows its secret once. */
export async function createKey(
  admin: Admin,
  spaces: readonly KeySpace[],
  workspaces: readonly Workspace[],
  defaults: { keySpaceId: string; workspaceId: string },
): Promise<Outcome> {
  const values = await formDialog(
    "Create a key",
    [
      { name: "name", label: "Name", required: true },
      {
        name: "keySpaceId",
        label: "Key space",
        type: "select",
        value: defaults.keySpaceId,
        options: spaces.map((s) => [s.id, s.name]),
      },
      {
        name: "workspaceId",
        label: "Workspace",
        type: "select",
        value: defaults.workspaceId,
        options: workspaces.map((w) => [w.id, w.name]),
      },
      {
        name: "ownerType",
        label: "Owner",
        type: "select",
        options: [
          ["organization", "Organization (acts as the workspace's owner)"],
          ["user", "User (a member's own key)"],
        ],
      },
      { name: "memberId", label: "Member id", hint: "The owning member for a user key; optional otherwise." },
      {
        name: "scopes",
        label: "Scopes",
        hint: "Separated by spaces or commas, e.g. things:read things:write-approval",
      },
      { name: "limits", label: "Limits", hint: "Optional override, e.g. minute=120/60s day=50000/86400s" },
      {
        name: "webhook",
        label: "Rejection webhook URL",
        type: "url",
        hint: "Receives rejected approvals, signed.",
      },
      { name: "expires", label: "Expires", type: "datetime-local", hint: "Leave empty for no expiry." },
    ],
    "Create key",
  );
  if (values === undefined) return undefined;
  const { key, secret } = await admin.createKey({
    name: values.name!,
    keySpaceId: values.keySpaceId!,
    workspaceId: values.workspaceId!,
    ownerType: values.ownerType === "user" ? OwnerType.USER : OwnerType.ORGANIZATION,
    memberId: values.memberId!,
    scopes: parseScopes(values.scopes!),
    ...(values.limits ? { limits: limitSet(values.limits) } : {}),
    rejectionWebhookUrl: values.webhook!,
    ...(values.expires ? { expiresAt: timestampFromDate(new Date(values.expires)) } : {}),
  });
  await secretDialog(`Key "${key!.name}" created`, secret);
  return `Created key ${key!.name} (${key!.id}).`;
}

/** Edits a key's name, scopes, limits, webhook and expiry. */
export async function editKey(admin: Admin, key: Key): Promise<Outcome> {
  const values = await formDialog(
    `Edit key ${key.name}`,
    [
      { name: "name", label: "Name", required: true, value: key.name },
      {
        name: "scopes",
        label: "Scopes",
        value: key.scopes.join(" "),
        hint: "Replaces every scope of the key.",
      },
      {
        name: "limits",
        label: "Limits",
        value: key.limits ? limitsText(key.limits.limits).replace(/,\s*/g, " ") : "",
        hint: "Empty drops the key's own limits, so its workspace's or key space's apply.",
      },
      { name: "webhook", label: "Rejection webhook URL", type: "url", value: key.rejectionWebhookUrl },
    ],
    "Save",
  );
  if (values === undefined) return undefined;
  await admin.updateKey({
    id: key.id,
    name: values.name!,
    scopes: { values: parseScopes(values.scopes!) },
    ...(values.limits ? { limits: limitSet(values.limits) } : { clearLimits: true }),
    rejectionWebhookUrl: values.webhook!,
  });
  return `Saved key ${values.name}.`;
}

/** Rotates a key with a chosen grace and shows the successor's secret once. */
export async function rotateKey(admin: Admin, key: Key): Promise<Outcome> {
  const values = await formDialog(
    `Rotate key ${key.name}`,
    [
      {
        name: "grace",
        label: "Grace period in seconds",
        type: "number",
        hint: "How long the old secret keeps working. Empty uses the key space's rotation grace.",
      },
    ],
    "Rotate",
  );
  if (values === undefined) return undefined;
  const grace = values.grace ? BigInt(values.grace) : undefined;
  const rotated = await admin.rotateKey({
    id: key.id,
    ...(grace === undefined ? {} : { graceSeconds: grace }),
  });
  await secretDialog(`Key "${key.name}" rotated`, rotated.secret);
  return `Rotated key ${key.name}: the new key is ${rotated.key!.id}.`;
}

/** Revokes, reactivates or deletes a key after a confirmation. */
export async function changeKeyStatus(
  admin: Admin,
  key: Key,
  action: "revoke" | "activate" | "delete",
): Promise<Outcome> {
  const texts = {
    revoke: ["Revoke", "Requests with it are denied at once; it can be reactivated later."],
    activate: ["Reactivate", "Requests with it are allowed again, within its scopes and limits."],
    delete: ["Delete", "The key is removed for good and cannot be reactivated."],
  } as const;
  const [verb, consequence] = texts[action];
  if (!(await confirmDialog(`${verb} key ${key.name}?`, `${key.display} — ${consequence}`, verb)))
    return undefined;
  if (action === "revoke") await admin.revokeKey({ id: key.id });
  else if (action === "activate") await admin.activateKey({ id: key.id });
  else await admin.deleteKey({ id: key.id });
  return `${verb === "Reactivate" ? "Reactivated" : `${verb}d`} key ${key.name}.`;
}
