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

/** Requires a root key with enough admin scope on every call to `serviceName`. */
export function adminAuthInterceptor(authorizer: Authorizer, serviceName: string): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== serviceName) return next(req);
    const headers = new Map<string, string>();
    const authorization = req.header.get("authorization");
    if (authorization) headers.set("authorization", authorization);
    const verdict = await authorizer.check({
      keySpace: ROOT_KEY_SPACE_ID,
      scopes: [requiredAdminScope(req.method.name)],
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
    req.contextValues.set(actorKey, verdict.identity.keyId);
    return next(req);
  };
}
