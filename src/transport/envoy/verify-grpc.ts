import { fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { VerifyRequestSchema, VerifyResponseSchema } from "../../../gen/keymesh/v1/verify_pb.js";
import type { Logger } from "../../log.js";
import { UNAVAILABLE_MESSAGE } from "../decision.js";
import {
  type VerifyInput,
  type VerifyOutput,
  validateVerifyInput,
  verdictToVerifyResponse,
  verifyRequestToInput,
} from "../verify-mapping.js";
import { bufferSerializers } from "./grpc-util.js";
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
}

/** The grpc-js implementation type of the KeyVerify service. */
export interface VerifyImplementation extends grpc.UntypedServiceImplementation {
  Verify: grpc.handleUnaryCall<Buffer, Uint8Array>;
}

type VerifyOutcome = { ok: true; bytes: Uint8Array } | { ok: false; code: grpc.status; details: string };

/** The transport-free core of Verify: VerifyRequest bytes in, VerifyResponse bytes or a gRPC status out; never rejects. */
export function createVerifyHandler(
  options: VerifyServiceOptions,
): (request: Uint8Array, callerDeadline?: grpc.Deadline) => Promise<VerifyOutcome> {
  const deadlineMs = options.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  const logFailure = createFailureLog(options.logger, "key verification failed");
  return async (request, callerDeadline) => {
    let input: VerifyInput;
    try {
      input = verifyRequestToInput(fromBinary(VerifyRequestSchema, request));
    } catch {
      return {
        ok: false,
        code: grpc.status.INVALID_ARGUMENT,
        details: "the VerifyRequest could not be decoded",
      };
    }
    const violation = validateVerifyInput(input);
    if (violation) return { ok: false, code: grpc.status.INVALID_ARGUMENT, details: violation.message };
    try {
      const verdict = await verdictWithin(() => options.verify(input), budgetMs(deadlineMs, callerDeadline));
      if (verdict.kind === "error") {
        logFailure(verdict.message);
        if (options.failureMode === "error") {
          return { ok: false, code: grpc.status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE };
        }
      }
      return { ok: true, bytes: toBinary(VerifyResponseSchema, verdictToVerifyResponse(verdict)) };
    } catch (error) {
      logFailure(error instanceof Error ? error.message : String(error));
      return { ok: false, code: grpc.status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE };
    }
  };
}

/** Builds the KeyVerify service for grpc-js; protobuf-es does the (de)serialization inside the handler. */
export function createVerifyService(options: VerifyServiceOptions): {
  definition: grpc.ServiceDefinition<VerifyImplementation>;
  implementation: VerifyImplementation;
} {
  const handle = createVerifyHandler(options);
  const definition: grpc.ServiceDefinition<VerifyImplementation> = {
    Verify: {
      path: VERIFY_METHOD_PATH,
      requestStream: false,
      responseStream: false,
      originalName: "verify",
      ...bufferSerializers,
    },
  };
  const implementation: VerifyImplementation = {
    Verify(call, callback) {
      handle(call.request, call.getDeadline()).then(
        (r) => (r.ok ? callback(null, r.bytes) : callback({ code: r.code, details: r.details })),
        () => callback({ code: grpc.status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE }),
      );
    },
  };
  return { definition, implementation };
}

/** Registers `keymesh.v1.KeyVerify/Verify` on a grpc-js server. */
export function addVerifyService(server: grpc.Server, options: VerifyServiceOptions): void {
  const { definition, implementation } = createVerifyService(options);
  server.addService(definition, implementation);
}
