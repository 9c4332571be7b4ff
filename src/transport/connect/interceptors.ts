import { createValidator } from "@bufbuild/protovalidate";
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import { ROOT_KEY_SPACE_ID } from "../../admin/admin-policy.js";
import type { AdminActor } from "../../domain/admin-actor.js";
import type { Authorizer } from "../../domain/check-request.js";

/** The root key that authenticated the call; without one the actor holds no scope, so every rule refuses it. */
export const adminActor = createContextKey<AdminActor>(Object.freeze({ keyId: "", scopes: [] }), {
  description: "authenticated root key",
});

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

/** The outcome of authenticating one KeyAdmin call: the root key that made it, or the error to answer. */
export type AdminAuthentication = { ok: true; actor: AdminActor } | { ok: false; error: ConnectError };

/**
 * Authenticates a KeyAdmin call from its Authorization header alone, so that it can run before the request body is
 * read: a valid key of the system key space, verified by the authorizer (a cached lookup). Which scopes a call needs
 * depends on its target, so the admin services decide that (src/admin/admin-policy.ts).
 */
export async function authenticateAdmin(
  authorizer: Authorizer,
  authorization: string | undefined,
  path: string,
): Promise<AdminAuthentication> {
  const headers = new Map<string, string>();
  if (authorization) headers.set("authorization", authorization);
  const verdict = await authorizer.check({
    keySpace: ROOT_KEY_SPACE_ID,
    scopes: [],
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
  const { identity } = verdict;
  // Only a key of the system key space itself is a root key, whatever else the name resolved to.
  if (identity.keySpaceId !== ROOT_KEY_SPACE_ID) {
    const error = new ConnectError(
      "a valid root key is required: the API key was not found",
      Code.Unauthenticated,
    );
    return { ok: false, error };
  }
  return { ok: true, actor: { keyId: identity.keyId, scopes: identity.scopes } };
}

/**
 * Requires a valid root key on every call to `serviceName` and hands it on as the call's AdminActor. Calls the
 * admin gate already authenticated (before their body was read) carry their actor and are not checked twice.
 */
export function adminAuthInterceptor(authorizer: Authorizer, serviceName: string): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== serviceName) return next(req);
    if (req.contextValues.get(adminActor).keyId !== "") return next(req);
    const result = await authenticateAdmin(authorizer, req.header.get("authorization") ?? undefined, req.url);
    if (!result.ok) throw result.error;
    req.contextValues.set(adminActor, result.actor);
    return next(req);
  };
}
