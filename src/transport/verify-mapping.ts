import { create, type JsonObject } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import {
  VerifyCode,
  type VerifyRequest,
  type VerifyResponse,
  VerifyResponseSchema,
} from "../../gen/keymesh/v1/verify_pb.js";
import type { Authorizer, CheckRequest } from "../domain/check-request.js";
import type { DenyReason, Identity, LimitStatus, Verdict } from "../domain/verdict.js";
import { UNAVAILABLE_MESSAGE } from "./decision.js";

/** A KeyVerify request in domain terms, independent of protobuf. */
export interface VerifyInput {
  /** The key as presented: a whole key, or `id:secret`. */
  key: string;
  /** Alternatively a whole Authorization header value; `key` wins when both are set. */
  authorization: string;
  keySpaceId: string;
  scopes: string[];
  /** Rate-limit tokens to spend; 0 means the route rule's cost or 1. */
  cost: number;
  method: string;
  path: string;
}

/** The answer to a KeyVerify request: the domain verdict itself, which is data, never an error. */
export type VerifyOutput = Verdict;

/** A request field that breaks the VerifyRequest contract, named for an INVALID_ARGUMENT error. */
export interface VerifyViolation {
  field: string;
  message: string;
}

/** The VerifyCode for each deny reason. */
export const VERIFY_CODES: Readonly<Record<DenyReason, VerifyCode>> = Object.freeze({
  missing: VerifyCode.MISSING,
  malformed: VerifyCode.MALFORMED,
  not_found: VerifyCode.NOT_FOUND,
  revoked: VerifyCode.REVOKED,
  expired: VerifyCode.EXPIRED,
  disabled: VerifyCode.DISABLED,
  key_too_old: VerifyCode.KEY_TOO_OLD,
  insufficient_scope: VerifyCode.INSUFFICIENT_SCOPE,
  approval_required: VerifyCode.APPROVAL_REQUIRED,
  workspace_disabled: VerifyCode.WORKSPACE_DISABLED,
  api_access_disabled: VerifyCode.API_ACCESS_DISABLED,
  rate_limited: VerifyCode.RATE_LIMITED,
  unavailable: VerifyCode.UNAVAILABLE,
  invalid_path: VerifyCode.INVALID_PATH,
  no_route: VerifyCode.NO_ROUTE,
});

/** Copies a protobuf VerifyRequest into a plain VerifyInput. */
export function verifyRequestToInput(req: VerifyRequest): VerifyInput {
  return {
    key: req.key,
    authorization: req.authorization,
    keySpaceId: req.keySpaceId,
    scopes: [...req.scopes],
    cost: req.cost,
    method: req.method,
    path: req.path,
  };
}

// The bounds declared with buf.validate in keymesh/v1/verify.proto.
const maxLengths: [keyof VerifyInput, string, number][] = [
  ["key", "key", 4096],
  ["authorization", "authorization", 8192],
  ["method", "method", 16],
  ["path", "path", 8192],
];

/** Checks the VerifyRequest contract (key_space_id required, declared bounds); returns the first violation. */
export function validateVerifyInput(input: VerifyInput): VerifyViolation | undefined {
  if (input.keySpaceId.length === 0) return { field: "key_space_id", message: "key_space_id is required" };
  for (const [prop, field, max] of maxLengths) {
    const value = input[prop] as string;
    if (value.length > max && [...value].length > max) {
      return { field, message: `${field} must be at most ${max} characters` };
    }
  }
  if (input.scopes.length > 64) return { field: "scopes", message: "scopes must have at most 64 items" };
  if (input.cost > 1_000_000) return { field: "cost", message: "cost must be at most 1000000" };
  return undefined;
}

/** Checks a protobuf VerifyRequest against its contract; returns the first violation. */
export function validateVerifyRequest(req: VerifyRequest): VerifyViolation | undefined {
  return validateVerifyInput(verifyRequestToInput(req));
}

/** Turns a VerifyInput into the domain's CheckRequest: a raw key is handed over as is, whatever header its key space reads. */
export function verifyInputToCheck(input: VerifyInput): CheckRequest {
  const headers = new Map<string, string>();
  if (!input.key && input.authorization) headers.set("authorization", input.authorization);
  const request: CheckRequest = {
    keySpace: input.keySpaceId,
    scopes: input.scopes,
    method: input.method.toUpperCase(),
    path: input.path,
    headers,
    cost: input.cost,
  };
  if (input.key) request.presentedKey = input.key;
  return request;
}

/** Turns a protobuf VerifyRequest into the domain's CheckRequest; pure, shared by the gRPC and Connect services. */
export function verifyRequestToCheck(req: VerifyRequest): CheckRequest {
  return verifyInputToCheck(verifyRequestToInput(req));
}

/** A `verify` function that asks an authorizer. */
export function verifyWithAuthorizer(
  authorizer: Authorizer,
): (input: VerifyInput) => VerifyOutput | Promise<VerifyOutput> {
  return (input) => authorizer.check(verifyInputToCheck(input));
}

/** Maps a verdict to a VerifyResponse: allow → VALID with identity, deny → its code, error → UNAVAILABLE. */
export function verdictToVerifyResponse(v: Verdict): VerifyResponse {
  if (v.kind === "allow") {
    return create(VerifyResponseSchema, {
      code: VerifyCode.VALID,
      valid: true,
      identity: identityMessage(v.identity),
      limits: v.limits.map(limitMessage),
      warnings: v.warnings,
    });
  }
  if (v.kind === "error") {
    // The cause may name internals (hosts, queries); callers get the generic text.
    return create(VerifyResponseSchema, {
      code: VerifyCode.UNAVAILABLE,
      valid: false,
      message: UNAVAILABLE_MESSAGE,
    });
  }
  return create(VerifyResponseSchema, {
    code: VERIFY_CODES[v.reason] ?? VerifyCode.UNSPECIFIED,
    valid: false,
    message: v.message,
    limits: v.limits.map(limitMessage),
  });
}

function identityMessage(id: Identity) {
  return {
    keyId: id.keyId,
    keySpaceId: id.keySpaceId,
    workspaceId: id.workspaceId,
    ownerType: id.ownerType === "organization" ? OwnerType.ORGANIZATION : OwnerType.USER,
    ownerMemberId: id.ownerMemberId,
    actingMemberId: id.actingMemberId,
    scopes: id.scopes,
    name: id.name,
    metadata: jsonObject(id.metadata),
  };
}

function limitMessage(l: LimitStatus) {
  return {
    name: l.name,
    appliesTo: l.appliesTo,
    limit: uint64(l.limit),
    remaining: uint64(l.remaining),
    reset: timestampFromMs(Math.max(0, Math.floor(Number.isFinite(l.resetAt) ? l.resetAt * 1000 : 0))),
    retryAfterSeconds: uint64(Math.ceil(l.retryAfterSeconds)),
  };
}

function uint64(n: number): bigint {
  return BigInt(Number.isFinite(n) && n > 0 ? Math.floor(n) : 0);
}

/** Key metadata as a protobuf Struct: whatever JSON cannot carry (undefined, functions, bigint) is dropped. */
function jsonObject(metadata: Record<string, unknown>): JsonObject {
  try {
    const json: unknown = JSON.parse(JSON.stringify(metadata ?? {}));
    return json !== null && typeof json === "object" && !Array.isArray(json) ? (json as JsonObject) : {};
  } catch {
    return {};
  }
}
