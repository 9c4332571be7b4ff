import { createHash } from "node:crypto";
import type { ApprovalGate } from "./ports.js";
import { isNulFree } from "./stored-text.js";

/** The digest that ties an approval to one request body. */
export function bodyDigest(body: Uint8Array | undefined): Buffer {
  return createHash("sha256")
    .update(body ?? new Uint8Array())
    .digest();
}

// Headers that carry credentials or session state; they never reach the approvals table.
const SECRET_HEADERS =
  /^(authorization|proxy-authorization|cookie|set-cookie|x-api-key|api-key|x-keymesh-approval)$/;

/** Copies request headers without credentials: the sources of the key space and the usual secret headers. */
export function strippedHeaders(
  headers: ReadonlyMap<string, string>,
  credentialHeaders: readonly string[],
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of headers) {
    if (SECRET_HEADERS.test(name) || credentialHeaders.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

const NOT_REDEEMABLE =
  "the approval is not approved for this key and request, has expired, or was used already";

// Approval ids are short (`apr_` and 12 characters); a longer ticket names none and is not looked up.
const MAX_TICKET_LENGTH = 128;

function headersAreNulFree(headers: ReadonlyMap<string, string>): boolean {
  for (const [name, value] of headers) if (!isNulFree(name) || !isNulFree(value)) return false;
  return true;
}

/** What an approval-level request turns into: a pending ticket, a refused retry, or a pass for a redeemed approval. */
export async function gateApproval(
  gate: ApprovalGate | undefined,
  header: string,
  request: { method: string; path: string; headers: ReadonlyMap<string, string>; body?: Uint8Array },
  key: { keyId: string; workspaceId: string; keySpaceId: string; credentialHeaders: readonly string[] },
  scope: string,
): Promise<
  | { kind: "pass" }
  | { kind: "refused"; message: string }
  | { kind: "pending"; id: string }
  | { kind: "unsupported" }
> {
  if (!gate) return { kind: "unsupported" };
  if (!isNulFree(request.method) || !isNulFree(request.path) || !headersAreNulFree(request.headers)) {
    return { kind: "refused", message: "a request with a NUL character cannot be queued for approval" };
  }
  const digest = bodyDigest(request.body);
  const ticket = request.headers.get(header);
  if (ticket && ticket.length > MAX_TICKET_LENGTH) return { kind: "refused", message: NOT_REDEEMABLE };
  if (ticket) {
    const redeemed = await gate.redeem(ticket, {
      keyId: key.keyId,
      method: request.method,
      path: request.path,
      bodyDigest: digest,
    });
    return redeemed ? { kind: "pass" } : { kind: "refused", message: NOT_REDEEMABLE };
  }
  const id = await gate.open({
    keyId: key.keyId,
    workspaceId: key.workspaceId,
    keySpaceId: key.keySpaceId,
    method: request.method,
    path: request.path,
    bodyDigest: digest,
    body: request.body,
    headers: strippedHeaders(request.headers, key.credentialHeaders),
    requiredScope: scope,
  });
  return { kind: "pending", id };
}
