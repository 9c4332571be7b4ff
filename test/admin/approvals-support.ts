import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import type { TestServer } from "../support/server.js";

/** Creates a key space `name` whose `things:write-approval` keys queue `POST /things` for a human; returns its id. */
export async function createApprovalKeySpace(t: TestServer, name: string): Promise<string> {
  const { keySpace } = await t.admin.createKeySpace({
    name,
    format: { prefix: "ap_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: {
      ladders: [
        {
          name: "crud",
          levels: ["read", "write-approval", "write"],
          approvalOf: { "write-approval": "write" },
        },
      ],
    },
    routes: [{ method: "POST", path: "/things", scopes: ["things:write"] }],
  });
  return keySpace!.id;
}

/**
 * Creates the approval key space `name`, a workspace with API access and an organization key holding
 * `things:write-approval`, whose `POST /things` calls queue for a human.
 */
export async function createApprovalAgent(
  t: TestServer,
  name: string,
): Promise<{ keySpaceId: string; workspaceId: string; secret: string }> {
  const keySpaceId = await createApprovalKeySpace(t, name);
  const workspaceId = (await t.admin.createWorkspace({ name: "w", apiAccess: true })).workspace!.id;
  const { secret } = await t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    name: "agent",
    scopes: ["things:write-approval"],
  });
  return { keySpaceId, workspaceId, secret };
}
