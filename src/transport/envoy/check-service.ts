import * as grpc from "@grpc/grpc-js";
import type { Authorizer, CheckRequest } from "../../domain/check-request.js";
import type { Identity, Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import type { DecisionObserver, DecisionSpan } from "../../observability/ports.js";
import {
  type DecisionOptions,
  RATE_LIMIT_HEADER_NAMES,
  rateLimitFigures,
  rateLimitHeaders,
  resolveDecisionOptions,
  UNAVAILABLE_MESSAGE,
  verdictToDecision,
} from "../decision.js";
import { DEFAULT_DECODE_LIMITS, type DecodeLimits, decodeCheckRequest } from "./check-decode.js";
import {
  completeCheckResponse,
  completeCheckResponseWithIntegers,
  createCheckResponseEncoder,
  type FixedCheckResponse,
  prepareCheckResponse,
  sameStrings,
} from "./check-response.js";
import { bufferSerializers } from "./grpc-util.js";
import { budgetMs, createFailureLog, DEFAULT_CHECK_DEADLINE_MS, decideWithin } from "./guard.js";
import { allWriteableIntegers } from "./header-option-wire.js";

/** The gRPC path Envoy's ext_authz filter calls. */
export const CHECK_METHOD_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** The rate-limit header names as bytes, encoded once. */
const RATE_LIMIT_NAME_BYTES: readonly Uint8Array[] = RATE_LIMIT_HEADER_NAMES.map((name) => Buffer.from(name));

/** Distinct denial answers kept encoded; there are a handful of reasons, and messages vary only by scope name. */
const MAX_CACHED_DENIALS = 256;

/** What the Check service needs. */
export interface CheckServiceOptions {
  authorizer: Authorizer;
  decisionOptions?: Partial<DecisionOptions>;
  logger?: Logger;
  /** A decision is sent within this many milliseconds even if the authorizer hangs (default 150). */
  deadlineMs?: number;
  decodeLimits?: DecodeLimits;
  /** Encoded responses kept for reuse (default 4096; 0 disables). */
  responseCacheSize?: number;
  /** Records every answer (metrics, span, decision log). */
  observer?: DecisionObserver;
}

/** What one Check call produces: CheckResponse bytes, or a gRPC error under failureMode "error". */
export type CheckOutcome =
  | { kind: "response"; bytes: Uint8Array }
  | { kind: "error"; code: grpc.status; details: string };

/**
 * The transport-free core of Check: CheckRequest bytes in, `done` called exactly once with the outcome (at once when
 * the answer needs no backend); never throws. A callback rather than a promise: a chain of promises per Check cost
 * more allocation than decoding the request.
 */
export type CheckHandler = (
  request: Uint8Array,
  callerDeadline: grpc.Deadline | undefined,
  done: (outcome: CheckOutcome) => void,
) => void;

/** Creates the Check logic over an authorizer: decode, decide within the deadline, encode. */
export function createCheckHandler(options: CheckServiceOptions): CheckHandler {
  const decisionOptions = resolveDecisionOptions(options.decisionOptions);
  const deadlineMs = options.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
  const encoder = createCheckResponseEncoder({ maxEntries: options.responseCacheSize });
  const logger = options.logger;
  const observer = options.observer;
  const logFailure = createFailureLog(logger, "ext_authz check failed");
  const unavailable: CheckOutcome = {
    kind: "error",
    code: grpc.status.UNAVAILABLE,
    details: UNAVAILABLE_MESSAGE,
  };

  // Denials without limits or an approval ticket depend only on reason and message, so their bytes are kept whole:
  // an attack of bad keys then costs no decision building or encoding. Bounded, as messages can name scopes.
  const denials = new Map<string, CheckOutcome>();
  const outcome = (verdict: Verdict): CheckOutcome => {
    if (verdict.kind === "deny" && verdict.limits.length === 0 && !verdict.approval) {
      const key = `${verdict.reason}\u0000${verdict.message}`;
      let cached = denials.get(key);
      if (!cached) {
        cached = build(verdict);
        if (denials.size < MAX_CACHED_DENIALS) denials.set(key, cached);
      }
      return cached;
    }
    return build(verdict);
  };
  // An allow without warnings depends only on its identity and the headers it strips. identityOf gives one frozen
  // identity per cached key entry, so the fixed bytes are kept per identity (dropped with it) and a Check encodes
  // only its rate-limit headers: no decision object, no cache-key lookup, no field-by-field comparison.
  const allows = new WeakMap<Identity, { strip: readonly string[]; fixed: FixedCheckResponse }>();
  const allow = (verdict: AllowVerdict): Uint8Array => {
    let hit = allows.get(verdict.identity);
    if (!hit || !sameStrings(hit.strip, verdict.stripHeaders)) {
      const decision = verdictToDecision({ ...verdict, limits: [] }, decisionOptions);
      hit = { strip: [...verdict.stripHeaders], fixed: prepareCheckResponse(decision) };
      allows.set(verdict.identity, hit);
    }
    // Limit figures go straight from numbers to bytes: every limited allow pays for these headers.
    const figures = rateLimitFigures(verdict.limits);
    if (!figures) return completeCheckResponse(hit.fixed, []);
    return allWriteableIntegers(figures)
      ? completeCheckResponseWithIntegers(hit.fixed, RATE_LIMIT_NAME_BYTES, figures)
      : completeCheckResponse(hit.fixed, rateLimitHeaders(verdict.limits));
  };
  const build = (verdict: Verdict): CheckOutcome => {
    if (
      verdict.kind === "allow" &&
      verdict.warnings.length === 0 &&
      Object.isFrozen(verdict.identity) &&
      Object.isFrozen(verdict.identity.scopes)
    ) {
      return { kind: "response", bytes: allow(verdict) };
    }
    const decision = verdictToDecision(verdict, decisionOptions);
    if (decision.transportError) return unavailable;
    return { kind: "response", bytes: encoder.encode(decision) };
  };
  // Built once: the answers for unreadable requests and for a failure while answering.
  const malformed = outcome({
    kind: "deny",
    reason: "malformed",
    message: "the authorization request could not be read",
    limits: [],
  });
  const failed = outcome({ kind: "error", message: "internal error" });

  const answer = (
    verdict: Verdict,
    request: CheckRequest,
    startedAt: number,
    span: DecisionSpan | undefined,
  ): CheckOutcome => {
    let result: CheckOutcome;
    try {
      if (verdict.kind === "error") logFailure(verdict.message, () => observer?.logFields(request, span));
      result = outcome(verdict);
    } catch (error) {
      logFailure(error instanceof Error ? error.message : String(error), () =>
        observer?.logFields(request, span),
      );
      verdict = INTERNAL_ERROR;
      result = failed;
    }
    observer?.decided(verdict, request, startedAt, span);
    return result;
  };

  return (request, callerDeadline, done) => {
    const startedAt = performance.now();
    const decoded = decodeCheckRequest(request, limits);
    if (!decoded.ok) {
      // The reason is ours (e.g. "truncated varint"); request bytes, which may hold a key, are never logged.
      logger?.debug("ext_authz request rejected as malformed", { reason: decoded.reason });
      observer?.unreadable(startedAt);
      done(malformed);
      return;
    }
    const checked = decoded.request;
    // One test when tracing is off; when on, backend calls made while deciding become children of this span.
    const span = observer?.tracing ? observer.startSpan(checked) : undefined;
    // A throwing or hanging authorizer becomes an error verdict; most verdicts arrive here synchronously.
    decideWithin(
      span === undefined
        ? () => options.authorizer.check(checked)
        : () => span.run(() => options.authorizer.check(checked)),
      budgetMs(deadlineMs, callerDeadline),
      options.authorizer.deadlineMs,
      (verdict) => done(answer(verdict, checked, startedAt, span)),
    );
  };
}

type AllowVerdict = Extract<Verdict, { kind: "allow" }>;

const INTERNAL_ERROR: Verdict = Object.freeze({ kind: "error", message: "internal error" });

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
