import { CredentialSourceKind, KeyStyle } from "../../gen/keymesh/v1/types_pb.js";
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
