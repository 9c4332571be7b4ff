import { create, toBinary } from "@bufbuild/protobuf";
import {
  type HeaderValueOption,
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
} from "../../../../gen/envoy/config/core/v3/base_pb.js";
import {
  type CheckResponse,
  CheckResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { StatusCode } from "../../../../gen/envoy/type/v3/http_status_pb.js";
import type { Decision } from "../../decision.js";

/** A response header as Envoy is told to set it: overwriting a client-sent one, kept even when empty. */
export function headerOption(name: string, value: string): HeaderValueOption {
  return create(HeaderValueOptionSchema, {
    header: { key: name, value },
    // Explicit, because the deprecated `append` and the enum's default both mean "append".
    appendAction: HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD,
    // An empty identity header must still overwrite a client-sent one; Envoy drops empty values otherwise.
    keepEmptyValue: value === "",
  });
}

/** Builds the CheckResponse message for a decision (allow → ok_response, otherwise denied_response). */
export function buildCheckResponse(decision: Decision): CheckResponse {
  return create(CheckResponseSchema, {
    status: { code: decision.grpcCode, message: decision.message },
    httpResponse: decision.allowed
      ? {
          case: "okResponse",
          value: {
            headers: decision.upstreamHeaders.map(([n, v]) => headerOption(n, v)),
            headersToRemove: decision.removeHeaders,
            responseHeadersToAdd: decision.responseHeaders.map(([n, v]) => headerOption(n, v)),
          },
        }
      : {
          case: "deniedResponse",
          value: {
            status: { code: decision.httpStatus as StatusCode },
            headers: decision.responseHeaders.map(([n, v]) => headerOption(n, v)),
            body: decision.body,
          },
        },
    dynamicMetadata: decision.dynamicMetadata,
  });
}

/**
 * Encodes a decision as CheckResponse bytes with protobuf-es, whole and uncached: the reference that the prepared
 * encoding of check-response-parts.ts is tested against.
 */
export function encodeCheckResponse(decision: Decision): Uint8Array {
  return toBinary(CheckResponseSchema, buildCheckResponse(decision));
}
