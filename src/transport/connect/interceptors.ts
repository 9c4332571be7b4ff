import { createValidator } from "@bufbuild/protovalidate";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { ROOT_KEY_SPACE_ID } from "../../admin/key-spaces.js";
import type { Authorizer } from "../../domain/check-request.js";

/** The admin key that authenticated the call, for the audit log. */
export const actorKey = createContextKey<string>("", { description: "admin key id" });

/** Rejects requests that break the proto's buf.validate rules with INVALID_ARGUMENT naming the field. */
export function validationInterceptor(): Interceptor {
  const validator = createValidator();
  return (next) => async (req) => {
    if (!req.stream) {
      const result = validator.validate(req.method.input, req.message);
      if (result.kind === "invalid") {
        const detail = result.violations.map((v) => v.toString()).join("; ");
        throw new ConnectError(`invalid request: ${detail}`, Code.InvalidArgument);
      }
      if (result.kind === "error")
        throw new ConnectError(`request validation failed: ${result.error.message}`, Code.Internal);
    }
    return next(req);
  };
}

/** The admin scope a KeyAdmin method needs: reads need admin:read, root keys need admin:root, the rest admin:write. */
export function requiredAdminScope(method: string): string {
  if (method === "CreateRootKey" || method === "GetWebhookSigningSecret") return "admin:root";
  return /^(Get|List)/.test(method) ? "admin:read" : "admin:write";
}

/** The outcome of authorizing one KeyAdmin call: the admin key that made it, or the error to answer. */
export type AdminAuthorization = { ok: true; keyId: string } | { ok: false; error: ConnectError };

/**
 * Authorizes a call to KeyAdmin method `method` from its Authorization header alone, so that it can run before the
 * request body is read: a root key with enough admin scope, verified by the authorizer (a cached lookup).
 */
export async function authorizeAdmin(
  authorizer: Authorizer,
  method: string,
  authorization: string | undefined,
  path: string,
): Promise<AdminAuthorization> {
  const headers = new Map<string, string>();
  if (authorization) headers.set("authorization", authorization);
  const verdict = await authorizer.check({
    keySpace: ROOT_KEY_SPACE_ID,
    scopes: [requiredAdminScope(method)],
    method: "POST",
    path,
    headers,
    cost: 0,
  });
  if (verdict.kind === "error")
    return { ok: false, error: new ConnectError("authorization is unavailable", Code.Unavailable) };
  if (verdict.kind === "deny") {
    const code = verdict.reason === "insufficient_scope" ? Code.PermissionDenied : Code.Unauthenticated;
    const message =
      code === Code.Unauthenticated ? `a valid root key is required: ${verdict.message}` : verdict.message;
    return { ok: false, error: new ConnectError(message, code) };
  }
  return { ok: true, keyId: verdict.identity.keyId };
}

/**
 * Requires a root key with enough admin scope on every call to `serviceName`. Calls the admin gate already
 * authorized (before their body was read) carry their actor and are not checked twice.
 */
export function adminAuthInterceptor(authorizer: Authorizer, serviceName: string): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== serviceName) return next(req);
    if (req.contextValues.get(actorKey) !== "") return next(req);
    const result = await authorizeAdmin(
      authorizer,
      req.method.name,
      req.header.get("authorization") ?? undefined,
      req.url,
    );
    if (!result.ok) throw result.error;
    req.contextValues.set(actorKey, result.keyId);
    return next(req);
  };
}
