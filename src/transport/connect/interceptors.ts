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

/**
 * Requires a valid root key on every call to `serviceName` and hands it on as the call's AdminActor. Which scopes a
 * call needs depends on its target, so the admin services decide that (src/admin/admin-policy.ts).
 */
export function adminAuthInterceptor(authorizer: Authorizer, serviceName: string): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== serviceName) return next(req);
    const headers = new Map<string, string>();
    const authorization = req.header.get("authorization");
    if (authorization) headers.set("authorization", authorization);
    const verdict = await authorizer.check({
      keySpace: ROOT_KEY_SPACE_ID,
      scopes: [],
      method: "POST",
      path: req.url,
      headers,
      cost: 0,
    });
    if (verdict.kind === "error") throw new ConnectError("authorization is unavailable", Code.Unavailable);
    if (verdict.kind === "deny") {
      const code = verdict.reason === "insufficient_scope" ? Code.PermissionDenied : Code.Unauthenticated;
      throw new ConnectError(
        code === Code.Unauthenticated ? `a valid root key is required: ${verdict.message}` : verdict.message,
        code,
      );
    }
    const { identity } = verdict;
    // Only a key of the system key space itself is a root key, whatever else the name resolved to.
    if (identity.keySpaceId !== ROOT_KEY_SPACE_ID) {
      throw new ConnectError("a valid root key is required: the API key was not found", Code.Unauthenticated);
    }
    req.contextValues.set(adminActor, { keyId: identity.keyId, scopes: identity.scopes });
    return next(req);
  };
}
