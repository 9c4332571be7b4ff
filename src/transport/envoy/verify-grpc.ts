import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { VerifyRequestSchema, VerifyResponseSchema } from "../../../gen/keymesh/v1/verify_pb.js";
import type { Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import type { DecisionObserver, HeaderReader, ObservedRequest } from "../../observability/ports.js";
import { UNAVAILABLE_MESSAGE } from "../decision.js";
import { Status } from "../grpc-h2/protocol.js";
import {
  type VerifyInput,
  type VerifyOutput,
  validateVerifyInput,
  verdictToVerifyResponse,
  verifyRequestToInput,
} from "../verify-mapping.js";
import { budgetMs, createFailureLog, DEFAULT_CHECK_DEADLINE_MS, verdictWithin } from "./guard.js";

/** The gRPC path of KeyVerify.Verify. */
export const VERIFY_METHOD_PATH = "/keymesh.v1.KeyVerify/Verify";

/** What the Verify service needs. */
export interface VerifyServiceOptions {
  verify: (input: VerifyInput) => VerifyOutput | Promise<VerifyOutput>;
  /** "error" turns a backend failure into gRPC UNAVAILABLE; "deny" answers code UNAVAILABLE as data (default). */
  failureMode?: "deny" | "error";
  /** A verdict is answered within this many milliseconds even if `verify` hangs (default 150). */
  deadlineMs?: number;
  logger?: Logger;
  /** Records every answer (metrics, span, decision log). */
  observer?: DecisionObserver;
}

type VerifyOutcome = { ok: true; bytes: Uint8Array } | { ok: false; code: number; details: string };

/** The transport-free core of Verify: VerifyRequest bytes in, VerifyResponse bytes or a gRPC status out; never rejects. */
export function createVerifyHandler(
  options: VerifyServiceOptions,
): (request: Uint8Array, callerDeadline?: number | Date, headers?: HeaderReader) => Promise<VerifyOutcome> {
  const deadlineMs = options.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  const logFailure = createFailureLog(options.logger, "key verification failed");
  const observer = options.observer;
  return async (request, callerDeadline, headers = NO_HEADERS) => {
    const startedAt = performance.now();
    let input: VerifyInput;
    try {
      input = verifyRequestToInput(fromBinary(VerifyRequestSchema, request));
    } catch {
      observer?.unreadable(startedAt);
      return {
        ok: false,
        code: Status.INVALID_ARGUMENT,
        details: "the VerifyRequest could not be decoded",
      };
    }
    const violation = validateVerifyInput(input);
    if (violation) {
      observer?.unreadable(startedAt);
      return { ok: false, code: Status.INVALID_ARGUMENT, details: violation.message };
    }
    // The caller's headers carry its trace context and request id; the key travels in the message, never here.
    const observed: ObservedRequest = {
      keySpace: input.keySpaceId,
      method: input.method,
      path: input.path,
      headers,
    };
    const span = observer?.tracing ? observer.startSpan(observed) : undefined;
    let verdict: Verdict = INTERNAL_ERROR;
    try {
      const produce = () => options.verify(input);
      verdict = await verdictWithin(
        span ? () => span.run(produce) : produce,
        budgetMs(deadlineMs, callerDeadline),
      );
      if (verdict.kind === "error") {
        logFailure(verdict.message, () => observer?.logFields(observed, span));
        if (options.failureMode === "error") {
          return { ok: false, code: Status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE };
        }
      }
      return { ok: true, bytes: toBinary(VerifyResponseSchema, verdictToVerifyResponse(verdict)) };
    } catch (error) {
      logFailure(error instanceof Error ? error.message : String(error), () =>
        observer?.logFields(observed, span),
      );
      verdict = INTERNAL_ERROR;
      return { ok: false, code: Status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE };
    } finally {
      observer?.decided(verdict, observed, startedAt, span);
    }
  };
}

const INTERNAL_ERROR: Verdict = Object.freeze({ kind: "error", message: "internal error" });
const NO_HEADERS: HeaderReader = { get: () => undefined };
