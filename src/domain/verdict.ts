import type { CredentialSource, OwnerType } from "./types.js";

/** The identity an allowed request carries upstream. */
export interface Identity {
  keyId: string;
  keySpaceId: string;
  workspaceId: string;
  ownerType: OwnerType;
  ownerMemberId: string;
  actingMemberId: string;
  scopes: string[];
  name: string;
  metadata: Record<string, unknown>;
  /**
   * Names the fields above that say who is calling (every field but the descriptive `name` and `metadata`): see
   * identityFingerprint. Computed where the identity is built, so what is derived from an identity can be keyed by
   * it without rebuilding the string per request.
   */
  fingerprint: string;
}

/** The state of one rate-limit bucket after a request. */
export interface LimitStatus {
  name: string;
  appliesTo: "key" | "workspace";
  limit: number;
  remaining: number;
  /** Unix time in seconds when the bucket is full again. */
  resetAt: number;
  /** Whole seconds until the request would fit; 0 when it did. */
  retryAfterSeconds: number;
}

/** Why a request was refused. */
export type DenyReason =
  | "missing"
  | "malformed"
  | "not_found"
  | "revoked"
  | "expired"
  | "disabled"
  | "key_too_old"
  | "insufficient_scope"
  | "approval_required"
  | "workspace_disabled"
  | "api_access_disabled"
  | "rate_limited"
  | "unavailable"
  /** The path cannot be matched against route rules without guessing (see normalizePath): a 400-class refusal. */
  | "invalid_path"
  /** The key space has route rules, none matches, and it refuses unmatched paths. */
  | "no_route";

/** A pending approval created for an approval-level request. */
export interface ApprovalTicket {
  id: string;
  status: "pending";
}

/** The outcome of checking one request: never an exception. */
export type Verdict =
  | {
      kind: "allow";
      identity: Identity;
      limits: LimitStatus[];
      /** Headers for the client, such as a key-age warning or a degraded limiter. */
      warnings: string[];
      /** Request headers the upstream must not see (the credential). */
      stripHeaders: string[];
    }
  | {
      kind: "deny";
      reason: DenyReason;
      message: string;
      limits: LimitStatus[];
      approval?: ApprovalTicket;
      /**
       * Where the key space that judged the request reads keys, so that a 401 challenges for that scheme; absent when
       * no key space was resolved.
       */
      credentialSources?: readonly CredentialSource[];
      /**
       * denialFingerprint of this denial, set on denials built once and answered many times; one-off denials leave
       * it out.
       */
      fingerprint?: string;
    }
  | {
      /** A backend failed; the failure policy decides between a 503 denial and a transport error. */
      kind: "error";
      message: string;
    };

/** The verdict for a failure while deciding: the error's message (never its stack), or the thrown value as text. */
export function errorVerdict(error: unknown): Verdict {
  return { kind: "error", message: error instanceof Error ? error.message : String(error) };
}

// Verdict types its limits as a mutable array; a frozen empty one throws on any attempt to change it.
const NO_LIMITS = Object.freeze([]) as readonly LimitStatus[] as LimitStatus[];

/** A denial built once to answer many requests: frozen, so one object serves them all, and fingerprinted. */
export function reusedDenial(
  reason: DenyReason,
  message: string,
  credentialSources?: readonly CredentialSource[],
): Verdict {
  const denial: Extract<Verdict, { kind: "deny" }> = { kind: "deny", reason, message, limits: NO_LIMITS };
  if (credentialSources) denial.credentialSources = credentialSources;
  denial.fingerprint = denialFingerprint(denial);
  return Object.freeze(denial);
}

/** The identity fields a fingerprint names. */
export type IdentityFields = Omit<Identity, "fingerprint">;

/**
 * A string that two identities share exactly when their key, key space, workspace, owner type, owner, acting member
 * and scopes (in order) are equal. Each part is length-prefixed, so no choice of values makes two differ only in
 * where one part ends.
 */
export function identityFingerprint(identity: IdentityFields): string {
  let out = `identity ${part(identity.keyId)}${part(identity.keySpaceId)}${part(identity.workspaceId)}`;
  out += `${part(identity.ownerType)}${part(identity.ownerMemberId)}${part(identity.actingMemberId)}`;
  out += `${identity.scopes.length}#`;
  for (const scope of identity.scopes) out += part(scope);
  return out;
}

/**
 * A string that two denials share exactly when their reason, message, credential sources and approval ticket are
 * equal; the limits, which change per request, are left out.
 */
export function denialFingerprint(
  denial: Pick<Extract<Verdict, { kind: "deny" }>, "reason" | "message" | "credentialSources" | "approval">,
): string {
  let out = `deny ${part(denial.reason)}${part(denial.message)}`;
  const sources = denial.credentialSources;
  out += sources ? `${sources.length}#` : "-#";
  for (const source of sources ?? [])
    out += source.kind === "header" ? `${part(source.kind)}${part(source.header)}` : part(source.kind);
  const approval = denial.approval;
  return approval ? `${out}a${part(approval.id)}${part(approval.status)}` : out;
}

function part(text: string): string {
  return `${text.length}:${text}`;
}
