import type { Authorizer, CheckRequest } from "../../src/domain/check-request.js";
import {
  type DenyReason,
  type Identity,
  type IdentityFields,
  identityFingerprint,
  type LimitStatus,
  type Verdict,
} from "../../src/domain/verdict.js";

/** An identity with its fingerprint, as the domain builds one. */
export function identityWith(fields: IdentityFields): Identity {
  return { ...fields, fingerprint: identityFingerprint(fields) };
}

/** A sample identity for allow verdicts. */
export const identity: Identity = identityWith({
  keyId: "key_1",
  keySpaceId: "ks_1",
  workspaceId: "ws_1",
  ownerType: "organization",
  ownerMemberId: "mem_owner",
  actingMemberId: "mem_acting",
  scopes: ["pods:read", "pods:write"],
  name: "ci key",
  metadata: { team: "infra" },
});

/** A limit status with sensible defaults. */
export function limit(overrides: Partial<LimitStatus> = {}): LimitStatus {
  return {
    name: "per-minute",
    appliesTo: "key",
    limit: 100,
    remaining: 50,
    resetAt: 2_000_000_000,
    retryAfterSeconds: 0,
    ...overrides,
  };
}

/** An allow verdict. */
export function allow(overrides: Partial<Extract<Verdict, { kind: "allow" }>> = {}): Verdict {
  return { kind: "allow", identity, limits: [], warnings: [], stripHeaders: ["authorization"], ...overrides };
}

/** A deny verdict. */
export function deny(
  reason: DenyReason,
  overrides: Partial<Extract<Verdict, { kind: "deny" }>> = {},
): Verdict {
  return { kind: "deny", reason, message: `denied: ${reason}`, limits: [], ...overrides };
}

/** Every deny reason. */
export const DENY_REASONS: DenyReason[] = [
  "missing",
  "malformed",
  "not_found",
  "revoked",
  "expired",
  "disabled",
  "key_too_old",
  "insufficient_scope",
  "approval_required",
  "workspace_disabled",
  "api_access_disabled",
  "rate_limited",
  "unavailable",
  "invalid_path",
  "no_route",
];

/**
 * An in-memory authorizer answering by the bearer token: "allow", "limited", "warn", "scope", "ratelimited",
 * "approval", "expired", "unavailable", "error", "throw", "hang"; anything else is not_found, no header is missing.
 */
export function createFakeAuthorizer(): Authorizer & { seen: CheckRequest[] } {
  const seen: CheckRequest[] = [];
  const byToken: Record<string, () => Verdict | Promise<Verdict>> = {
    allow: () => allow(),
    limited: () => allow({ limits: [limit({ remaining: 7, resetAt: 1_900_000_000 })] }),
    warn: () => allow({ warnings: ["key must be rotated within 3 days"] }),
    scope: () => deny("insufficient_scope", { message: "the API key lacks the scope pods:write" }),
    ratelimited: () =>
      deny("rate_limited", {
        message: "rate limit exceeded",
        limits: [
          limit({ name: "minute", remaining: 0, retryAfterSeconds: 12, resetAt: 1_900_000_012 }),
          limit({ name: "hour", remaining: 0, retryAfterSeconds: 30, resetAt: 1_900_000_030 }),
        ],
      }),
    approval: () =>
      deny("approval_required", { message: "needs approval", approval: { id: "apr_1", status: "pending" } }),
    expired: () => deny("expired", { message: "the API key has expired" }),
    unavailable: () => deny("unavailable", { message: "rate limiter unavailable" }),
    error: () => ({ kind: "error", message: "database connection refused at 10.0.0.5" }),
    throw: () => {
      throw new Error("boom");
    },
    hang: () => new Promise<Verdict>(() => {}),
  };
  return {
    seen,
    async check(request) {
      seen.push(request);
      const auth =
        request.presentedKey === undefined
          ? request.headers.get("authorization")
          : `Bearer ${request.presentedKey}`;
      if (auth === undefined) return deny("missing", { message: "an API key is required" });
      const token = auth.startsWith("Bearer ") ? auth.slice(7) : "";
      const produce = byToken[token];
      if (!produce) return deny("not_found", { message: "the API key is not valid" });
      return produce();
    },
  };
}
