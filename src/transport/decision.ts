import type { DenyReason, LimitStatus, Verdict } from "../domain/verdict.js";
import { challengeHeader } from "./challenge.js";

/** How verdicts become HTTP decisions; shared by the gRPC, Connect and plain-HTTP transports. */
export interface DecisionOptions {
  /** Prefix of the identity headers sent upstream, e.g. `x-keymesh-key-id`. */
  identityHeaderPrefix: string;
  /** Realm named in `WWW-Authenticate` challenges. */
  realm: string;
  /** What a backend failure (`kind: "error"`) becomes: a 503 denial, or a transport error for the proxy's own policy. */
  failureMode: "deny" | "error";
  /**
   * Scheme of a 401 challenge when no key space judged the request (unknown key space, unreadable request); otherwise
   * the challenge follows the key space's credential sources.
   */
  challenge?: "Bearer" | "Basic";
}

/** A transport-neutral answer to one authorization request. */
export interface Decision {
  allowed: boolean;
  httpStatus: number;
  /** google.rpc.Code carried in the ext_authz `status` (0 allows). */
  grpcCode: number;
  /** Identity headers added to the request sent upstream (allow only). */
  upstreamHeaders: [string, string][];
  /** Headers for the client: rate-limit and warning headers on allows, challenge, content type and limits on denials. */
  responseHeaders: [string, string][];
  /** Request headers the upstream must not see. */
  removeHeaders: string[];
  /** JSON body of a denial; empty on allow. */
  body: string;
  /** Facts for later filters and access logs (Envoy dynamic metadata). */
  dynamicMetadata: Record<string, string | string[]>;
  /** A backend failed under failureMode "error": the transport reports an error (gRPC UNAVAILABLE) rather than this decision. */
  transportError: boolean;
  /** "allow", the deny reason, or "error" for a backend failure; for logs and metrics. */
  reason: DenyReason | "allow" | "error";
  /** Explanation safe to show the client. */
  message: string;
}

/** The defaults: `x-keymesh-` identity headers, realm "keymesh", failures become 503 denials. */
export const DEFAULT_DECISION_OPTIONS: Readonly<DecisionOptions> = Object.freeze({
  identityHeaderPrefix: "x-keymesh-",
  realm: "keymesh",
  failureMode: "deny",
  challenge: "Bearer",
});

/** Fills unset decision options with the defaults. */
export function resolveDecisionOptions(options: Partial<DecisionOptions> = {}): DecisionOptions {
  return { ...DEFAULT_DECISION_OPTIONS, ...stripUndefined(options) };
}

/** Response headers whose values change from one request to the next, so encoders must not cache them. */
export const VOLATILE_HEADERS: ReadonlySet<string> = new Set([
  "retry-after",
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
]);

/** google.rpc.Code values used in decisions. */
export const GrpcCode = {
  OK: 0,
  INVALID_ARGUMENT: 3,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  UNAVAILABLE: 14,
  UNAUTHENTICATED: 16,
} as const;

const unauthenticated: ReadonlySet<DenyReason> = new Set([
  "missing",
  "malformed",
  "not_found",
  "revoked",
  "expired",
  "disabled",
  "key_too_old",
]);

/** The message a backend failure shows the client; the real cause may name internals and stays in the logs. */
export const UNAVAILABLE_MESSAGE = "the authorization service is temporarily unavailable";

const JSON_CONTENT_TYPE: [string, string] = ["content-type", "application/json"];

/** Maps a verdict to the decision every transport sends; pure apart from reading the clock for Retry-After. */
export function verdictToDecision(
  verdict: Verdict,
  options: DecisionOptions = DEFAULT_DECISION_OPTIONS,
  nowSeconds: number = Date.now() / 1000,
): Decision {
  if (verdict.kind === "allow") return allowDecision(verdict, options);
  if (verdict.kind === "error") {
    const decision = denyDecision(
      { reason: "unavailable", message: UNAVAILABLE_MESSAGE, limits: [] },
      options,
      nowSeconds,
    );
    return { ...decision, reason: "error", transportError: isTransportError(verdict, options) };
  }
  return denyDecision(verdict, options, nowSeconds);
}

const NONE: readonly [string, string][] = Object.freeze([]);

/** Whether the verdict is answered with a transport error (gRPC UNAVAILABLE) rather than a decision. */
export const isTransportError = (verdict: Verdict, options: DecisionOptions): boolean =>
  verdict.kind === "error" && options.failureMode === "error";

/** An answer's headers that change per request (VOLATILE_HEADERS), in order; the answer has them last. */
export function volatileHeaders(verdict: Verdict, now?: number): readonly [string, string][] {
  if (verdict.kind === "allow") return verdict.limits.length === 0 ? NONE : rateLimitHeaders(verdict.limits);
  if (verdict.kind !== "deny" || verdict.reason !== "rate_limited") return NONE;
  const seconds = retryAfter(verdict.limits, now ?? Date.now() / 1000);
  return [["retry-after", String(seconds)], ...rateLimitHeaders(verdict.limits)];
}

function allowDecision(verdict: Extract<Verdict, { kind: "allow" }>, options: DecisionOptions): Decision {
  const id = verdict.identity;
  const p = options.identityHeaderPrefix;
  // Every identity header is always present (even when empty) so that a client-sent copy is overwritten, never trusted.
  const upstreamHeaders: [string, string][] = [
    [`${p}key-id`, headerValue(id.keyId)],
    [`${p}workspace-id`, headerValue(id.workspaceId)],
    [`${p}owner-id`, headerValue(id.actingMemberId)],
    [`${p}owner-type`, headerValue(id.ownerType)],
    [`${p}scopes`, headerValue(id.scopes.join(","))],
    [`${p}key-space-id`, headerValue(id.keySpaceId)],
  ];
  // Fixed headers first, volatile rate-limit ones last, so a cached encoding plus the spliced tail keeps this order.
  const responseHeaders: [string, string][] = [];
  if (verdict.warnings.length > 0) responseHeaders.push([`${p}warning`, warningHeader(verdict.warnings)]);
  responseHeaders.push(...volatileHeaders(verdict));
  return {
    allowed: true,
    httpStatus: 200,
    grpcCode: GrpcCode.OK,
    upstreamHeaders,
    responseHeaders,
    removeHeaders: verdict.stripHeaders.map((h) => h.toLowerCase()),
    body: "",
    dynamicMetadata: {
      decision: "allow",
      key_id: id.keyId,
      key_space_id: id.keySpaceId,
      workspace_id: id.workspaceId,
      owner_type: id.ownerType,
      owner_member_id: id.ownerMemberId,
      owner_id: id.actingMemberId,
      scopes: [...id.scopes],
    },
    transportError: false,
    reason: "allow",
    message: "",
  };
}

function denyDecision(
  verdict: Pick<
    Extract<Verdict, { kind: "deny" }>,
    "reason" | "message" | "limits" | "approval" | "credentialSources"
  >,
  options: DecisionOptions,
  nowSeconds: number,
): Decision {
  const { reason, message, approval } = verdict;
  const responseHeaders: [string, string][] = [JSON_CONTENT_TYPE];
  let httpStatus: number;
  let grpcCode: number;
  let body = errorBody(reason, message);
  if (unauthenticated.has(reason)) {
    httpStatus = 401;
    grpcCode = GrpcCode.UNAUTHENTICATED;
    responseHeaders.push(["www-authenticate", challengeHeader(reason, verdict.credentialSources, options)]);
  } else if (reason === "rate_limited") {
    httpStatus = 429;
    grpcCode = GrpcCode.RESOURCE_EXHAUSTED;
    responseHeaders.push(...volatileHeaders({ kind: "deny", ...verdict }, nowSeconds));
  } else if (reason === "invalid_path") {
    // The request itself is at fault, whoever sends it: 400, as a proxy that normalises paths would answer.
    httpStatus = 400;
    grpcCode = GrpcCode.INVALID_ARGUMENT;
  } else if (reason === "unavailable") {
    httpStatus = 503;
    grpcCode = GrpcCode.UNAVAILABLE;
  } else if (reason === "approval_required" && approval) {
    // 202 tells the client its request is parked until a human approves it; without a ticket there is nothing to poll.
    httpStatus = 202;
    grpcCode = GrpcCode.PERMISSION_DENIED;
    body = JSON.stringify({ approval: { id: approval.id, status: approval.status } });
    // Also as a header: a proxy that drops denial bodies (nginx auth_request) can still hand the ticket on, and
    // builds JSON from it, so only an id that needs no escaping is sent.
    if (SAFE_APPROVAL_ID.test(approval.id))
      responseHeaders.push([`${options.identityHeaderPrefix}approval-id`, approval.id]);
  } else {
    httpStatus = 403;
    grpcCode = GrpcCode.PERMISSION_DENIED;
  }
  return {
    allowed: false,
    httpStatus,
    grpcCode,
    upstreamHeaders: [],
    responseHeaders,
    removeHeaders: [],
    body,
    dynamicMetadata: { decision: "deny", reason },
    transportError: false,
    reason,
    message,
  };
}

const SAFE_APPROVAL_ID = /^[A-Za-z0-9_-]{1,128}$/;

function errorBody(reason: DenyReason, message: string): string {
  return JSON.stringify({ error: { code: reason, message } });
}

/** The most constrained bucket: lowest remaining, ties broken by the soonest reset. */
export function mostConstrained(limits: readonly LimitStatus[]): LimitStatus | undefined {
  let best: LimitStatus | undefined;
  for (const l of limits) {
    if (!best || l.remaining < best.remaining || (l.remaining === best.remaining && l.resetAt < best.resetAt))
      best = l;
  }
  return best;
}

/** Names of the x-ratelimit-* headers, in the order responses carry them. */
export const RATE_LIMIT_HEADER_NAMES = [
  "x-ratelimit-limit",
  "x-ratelimit-remaining",
  "x-ratelimit-reset",
] as const;

/**
 * The x-ratelimit-* values of the most constrained bucket as whole numbers, in RATE_LIMIT_HEADER_NAMES order;
 * undefined without limits.
 */
export function rateLimitFigures(limits: readonly LimitStatus[]): [number, number, number] | undefined {
  const l = mostConstrained(limits);
  if (!l) return undefined;
  return [wholeNonNegative(l.limit), wholeNonNegative(l.remaining), Math.ceil(wholeNonNegative(l.resetAt))];
}

/** The x-ratelimit-* headers of the most constrained bucket, in the order responses carry them; none without limits. */
export function rateLimitHeaders(limits: readonly LimitStatus[]): [string, string][] {
  const figures = rateLimitFigures(limits);
  if (!figures) return [];
  return [
    [RATE_LIMIT_HEADER_NAMES[0], String(figures[0])],
    [RATE_LIMIT_HEADER_NAMES[1], String(figures[1])],
    [RATE_LIMIT_HEADER_NAMES[2], String(figures[2])],
  ];
}

/** Whole seconds until every failing bucket has room again: the maximum over failing buckets, at least 1. */
export function retryAfter(limits: readonly LimitStatus[], nowSeconds: number): number {
  let seconds = 0;
  for (const l of limits) {
    if (l.retryAfterSeconds > 0) seconds = Math.max(seconds, Math.ceil(l.retryAfterSeconds));
  }
  if (seconds === 0) {
    // No bucket said how long: fall back to the reset time of the exhausted ones.
    for (const l of limits) {
      if (l.remaining <= 0) seconds = Math.max(seconds, Math.ceil(l.resetAt - nowSeconds));
    }
  }
  return Number.isFinite(seconds) && seconds >= 1 ? seconds : 1;
}

function wholeNonNegative(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}

function warningHeader(warnings: readonly string[]): string {
  // Warning-style entries (RFC 7234 §5.5): quoted text keeps commas inside a warning unambiguous.
  return warnings.map((w) => `199 keymesh "${headerValue(w).replace(/["\\]/g, "'")}"`).join(", ");
}

const unsafeHeaderChar = /[^\t\x20-\x7e]/;
const unsafeHeaderChars = /[^\t\x20-\x7e]/g;

/** Makes a string a valid header value everywhere (Envoy, gRPC metadata, Node): printable ASCII only. */
export function headerValue(value: string): string {
  return unsafeHeaderChar.test(value) ? value.replace(unsafeHeaderChars, "?") : value;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
