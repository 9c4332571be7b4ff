import type * as grpc from "@grpc/grpc-js";
import type { Authorizer } from "../../domain/check-request.js";
import type { Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import { type DecisionOptions, resolveDecisionOptions } from "../decision.js";
import { type CheckOutcome, createCheckEncoder } from "./check-encode.js";
import { bufferSerializers } from "./grpc-util.js";
import { budgetMs, createFailureLog, DEFAULT_CHECK_DEADLINE_MS, decideWithin } from "./guard.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, decodeCheckRequest } from "./wire/check-decode.js";

export type { CheckOutcome } from "./check-encode.js";

/** The gRPC path Envoy's ext_authz filter calls. */
export const CHECK_METHOD_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** What the Check service needs. */
export interface CheckServiceOptions {
  authorizer: Authorizer;
  decisionOptions?: Partial<DecisionOptions>;
  logger?: Logger;
  /** A decision is sent within this many milliseconds even if the authorizer hangs (default 150). */
  deadlineMs?: number;
  decodeLimits?: DecodeLimits;
  /** Answers kept encoded in the response cache (response-cache.ts; default 4096, 0 keeps none). */
  responseCacheSize?: number;
  /** Counts every answer by decision, for /metrics. */
  counters?: CheckCounters;
}

/**
 * Checks answered, by the verdict reached. `error` means no decision (deadline passed, backend failed, internal
 * failure); the failure mode then picked what Envoy was told, so these are invisible in Envoy's own allow/deny counts.
 */
export interface CheckCounters {
  allow: number;
  deny: number;
  error: number;
}

/** Counters at zero, for createCheckHandler's `counters` option. */
export function createCheckCounters(): CheckCounters {
  return { allow: 0, deny: 0, error: 0 };
}

/**
 * The transport-free core of Check: CheckRequest bytes in, `done` called exactly once with the outcome (at once when
 * the answer needs no backend); never throws. A callback rather than a promise, so a Check decided without a
 * backend allocates no promise.
 */
export type CheckHandler = (
  request: Uint8Array,
  callerDeadline: grpc.Deadline | undefined,
  done: (outcome: CheckOutcome) => void,
) => void;

/** Creates the Check logic over an authorizer: decode the request, decide within the deadline, encode the verdict. */
export function createCheckHandler(options: CheckServiceOptions): CheckHandler {
  const deadlineMs = options.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
  const encode = createCheckEncoder(
    resolveDecisionOptions(options.decisionOptions),
    options.responseCacheSize,
  );
  const logger = options.logger;
  const logFailure = createFailureLog(logger, "ext_authz check failed");

  // Built once: the answers for unreadable requests and for a failure while answering.
  const malformed = encode({
    kind: "deny",
    reason: "malformed",
    message: "the authorization request could not be read",
    limits: [],
  });
  const failed = encode({ kind: "error", message: "internal error" });

  const counters = options.counters;
  const answer = (verdict: Verdict): CheckOutcome => {
    try {
      if (verdict.kind === "error") logFailure(verdict.message);
      const result = encode(verdict);
      if (counters) counters[verdict.kind]++;
      return result;
    } catch (error) {
      logFailure(error instanceof Error ? error.message : String(error));
      if (counters) counters.error++;
      return failed;
    }
  };

  return (request, callerDeadline, done) => {
    const decoded = decodeCheckRequest(request, limits);
    if (!decoded.ok) {
      // The reason is ours (e.g. "truncated varint"); request bytes, which may hold a key, are never logged.
      logger?.debug("ext_authz request rejected as malformed", { reason: decoded.reason });
      if (counters) counters.deny++;
      done(malformed);
      return;
    }
    // A throwing or hanging authorizer becomes an error verdict; most verdicts arrive here synchronously.
    decideWithin(
      () => options.authorizer.check(decoded.request),
      budgetMs(deadlineMs, callerDeadline),
      options.authorizer.deadlineMs,
      (verdict) => done(answer(verdict)),
    );
  };
}

/** The grpc-js implementation type of the Authorization service. */
export interface CheckImplementation extends grpc.UntypedServiceImplementation {
  Check: grpc.handleUnaryCall<Buffer, Uint8Array>;
}

/** Builds the Authorization service with raw-bytes (de)serializers, so only the fields keymesh uses are decoded. */
export function createCheckService(options: CheckServiceOptions): {
  definition: grpc.ServiceDefinition<CheckImplementation>;
  implementation: CheckImplementation;
} {
  const handle = createCheckHandler(options);
  const definition: grpc.ServiceDefinition<CheckImplementation> = {
    Check: {
      path: CHECK_METHOD_PATH,
      requestStream: false,
      responseStream: false,
      originalName: "check",
      ...bufferSerializers,
    },
  };
  const implementation: CheckImplementation = {
    Check(call, callback) {
      handle(call.request, call.getDeadline(), (result) =>
        result.kind === "response"
          ? callback(null, result.bytes)
          : callback({ code: result.code, details: result.details }),
      );
    },
  };
  return { definition, implementation };
}

/** Registers `envoy.service.auth.v3.Authorization/Check` on a grpc-js server. */
export function addCheckService(server: grpc.Server, options: CheckServiceOptions): void {
  const { definition, implementation } = createCheckService(options);
  server.addService(definition, implementation);
}
