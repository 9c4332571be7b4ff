import type { Verdict } from "../../domain/verdict.js";
import {
  type DecisionOptions,
  isTransportError,
  RATE_LIMIT_HEADER_NAMES,
  rateLimitFigures,
  UNAVAILABLE_MESSAGE,
  verdictToDecision,
  volatileHeaders,
} from "../decision.js";
import { Status } from "../grpc-h2/protocol.js";
import { createResponseCache } from "./response-cache.js";
import {
  completeCheckResponse,
  completeCheckResponseWithIntegers,
  prepareCheckResponse,
} from "./wire/check-response-parts.js";
import { allWriteableIntegers } from "./wire/header-option-wire.js";

/** The rate-limit header names as bytes, encoded once. */
const RATE_LIMIT_NAME_BYTES: readonly Uint8Array[] = RATE_LIMIT_HEADER_NAMES.map((name) => Buffer.from(name));

/** What one Check call produces: CheckResponse bytes, or a gRPC error under failureMode "error". */
export type CheckOutcome =
  | { kind: "response"; bytes: Uint8Array }
  | { kind: "error"; code: number; details: string };

/**
 * The encode step of Check: a verdict to the outcome sent to Envoy. The part of an answer that does not change
 * between requests comes from the response cache (response-cache.ts, the only reuse of encoded bytes), built on a
 * miss from the decision; the rate-limit headers of this request are then written after it.
 */
export function createCheckEncoder(
  decisionOptions: DecisionOptions,
  responseCacheSize: number | undefined,
): (verdict: Verdict) => CheckOutcome {
  const cache = createResponseCache(responseCacheSize);
  const unavailable: CheckOutcome = {
    kind: "error",
    code: Status.UNAVAILABLE,
    details: UNAVAILABLE_MESSAGE,
  };
  const build = (verdict: Verdict) => prepareCheckResponse(verdictToDecision(verdict, decisionOptions));
  return (verdict) => {
    if (isTransportError(verdict, decisionOptions)) return unavailable;
    const fixed = cache.fixedPart(verdict, build);
    if (verdict.kind === "allow" && verdict.limits.length > 0) {
      // Limit figures go straight from numbers to bytes: every limited allow pays for these headers.
      const figures = rateLimitFigures(verdict.limits);
      if (figures && allWriteableIntegers(figures))
        return {
          kind: "response",
          bytes: completeCheckResponseWithIntegers(fixed, RATE_LIMIT_NAME_BYTES, figures),
        };
    }
    return { kind: "response", bytes: completeCheckResponse(fixed, volatileHeaders(verdict)) };
  };
}
