import type { DenyReason, Verdict } from "../domain/verdict.js";

/** The decision paths, as the `transport` label names them. */
export const TRANSPORTS = ["envoy_grpc", "http_authz", "verify_grpc", "verify_connect"] as const;
export type Transport = (typeof TRANSPORTS)[number];

// A record, not a list, so that a reason added to DenyReason fails to compile here until it has a label.
const DENY_REASON_SET: Readonly<Record<DenyReason, true>> = {
  missing: true,
  malformed: true,
  not_found: true,
  revoked: true,
  expired: true,
  disabled: true,
  key_too_old: true,
  insufficient_scope: true,
  approval_required: true,
  workspace_disabled: true,
  api_access_disabled: true,
  rate_limited: true,
  unavailable: true,
  invalid_path: true,
  no_route: true,
};

/** Every deny reason: the bounded `reason` label of denials. */
export const DENY_REASONS = Object.keys(DENY_REASON_SET) as DenyReason[];

/** One value of the (decision, reason) label pair. */
export interface Outcome {
  decision: "allow" | "deny" | "error";
  reason: string;
}

/**
 * Every (decision, reason) pair, by index: allows have reason `none`, denials their DenyReason, and a decision that
 * could not be made (backend failure, deadline, internal error) is `error` with reason `unavailable`, what the
 * client is told.
 */
export const OUTCOMES: readonly Outcome[] = Object.freeze([
  { decision: "allow", reason: "none" },
  ...DENY_REASONS.map((reason): Outcome => ({ decision: "deny", reason })),
  { decision: "error", reason: "unavailable" },
]);

const ALLOW_INDEX = 0;
/** The outcome index of a failure to decide. */
export const ERROR_INDEX = OUTCOMES.length - 1;
/** The outcome index of a request that could not be read. */
export const MALFORMED_INDEX = 1 + DENY_REASONS.indexOf("malformed");
const DENY_INDEX = new Map<string, number>(DENY_REASONS.map((reason, i) => [reason, i + 1]));

/** The outcome index of a verdict: a Map read for denials, nothing else. */
export function outcomeIndex(verdict: Verdict): number {
  if (verdict.kind === "allow") return ALLOW_INDEX;
  if (verdict.kind === "error") return ERROR_INDEX;
  return DENY_INDEX.get(verdict.reason) ?? ERROR_INDEX;
}
