import type { Authorizer, CheckRequest } from "../../domain/check-request.js";
import type { Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import type { DecisionObserver, DecisionSpan } from "../../observability/ports.js";
import { type DecisionOptions, resolveDecisionOptions } from "../decision.js";
import { type CheckOutcome, createCheckEncoder } from "./check-encode.js";
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
  /** Records every answer (metrics, span, decision log). */
  observer?: DecisionObserver;
}

/**
 * The transport-free core of Check: CheckRequest bytes in, `done` called exactly once with the outcome (at once when
 * the answer needs no backend); never throws. A callback rather than a promise, so a Check decided without a
 * backend allocates no promise.
 */
export type CheckHandler = (
  request: Uint8Array,
  /** When the caller gives up, as an epoch time in milliseconds or a Date; undefined when it set no deadline. */
  callerDeadline: number | Date | undefined,
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

  const observer = options.observer;
  const answer = (
    verdict: Verdict,
    request: CheckRequest,
    startedAt: number,
    span: DecisionSpan | undefined,
  ): CheckOutcome => {
    let result: CheckOutcome;
    try {
      if (verdict.kind === "error") logFailure(verdict.message, () => observer?.logFields(request, span));
      result = encode(verdict);
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

const INTERNAL_ERROR: Verdict = Object.freeze({ kind: "error", message: "internal error" });
