import { create, toBinary } from "@bufbuild/protobuf";
import {
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { StatusCode } from "../../../../gen/envoy/type/v3/http_status_pb.js";
import { type Decision, VOLATILE_HEADERS } from "../../decision.js";
import { headerOption } from "./check-response.js";
import {
  headerOptionsSize,
  integerOptionsSize,
  varintSize,
  writeHeaderOptions,
  writeIntegerOptions,
  writeVarint,
} from "./header-option-wire.js";

/**
 * The bytes of a decision that do not change between requests (everything but the rate-limit headers), ready to
 * take each request's volatile headers with `completeCheckResponse`. Opaque to callers.
 *
 * The volatile headers are encoded separately and spliced in after the fixed part of the oneof member: protobuf
 * merges a repeated field split across two occurrences of its message, so the result decodes as one response.
 */
export interface FixedCheckResponse {
  /** CheckResponse with status and dynamic_metadata. */
  readonly head: Uint8Array;
  /** Field number of the oneof member: 2 denied_response, 3 ok_response. */
  readonly field: 2 | 3;
  /** The oneof member's bytes without the volatile headers. */
  readonly inner: Uint8Array;
  /** The whole response when there are no volatile headers, built on first use. */
  whole?: Uint8Array;
}

/** Encodes the part of `decision` that stays the same between requests; its volatile headers are left out. */
export function prepareCheckResponse(decision: Decision): FixedCheckResponse {
  const fixed = decision.responseHeaders.filter((h) => !VOLATILE_HEADERS.has(h[0].toLowerCase()));
  const head = toBinary(
    CheckResponseSchema,
    create(CheckResponseSchema, {
      status: { code: decision.grpcCode, message: decision.message },
      dynamicMetadata: decision.dynamicMetadata,
    }),
  );
  if (decision.allowed) {
    const inner = toBinary(
      OkHttpResponseSchema,
      create(OkHttpResponseSchema, {
        headers: decision.upstreamHeaders.map(([n, v]) => headerOption(n, v)),
        headersToRemove: decision.removeHeaders,
        responseHeadersToAdd: fixed.map(([n, v]) => headerOption(n, v)),
      }),
    );
    return { head, field: 3, inner };
  }
  const inner = toBinary(
    DeniedHttpResponseSchema,
    create(DeniedHttpResponseSchema, {
      status: { code: decision.httpStatus as StatusCode },
      headers: fixed.map(([n, v]) => headerOption(n, v)),
      body: decision.body,
    }),
  );
  return { head, field: 2, inner };
}

/** The CheckResponse bytes of a prepared decision with `varying` (volatile headers, in order) added. */
export function completeCheckResponse(
  fixed: FixedCheckResponse,
  varying: readonly (readonly [string, string])[],
): Uint8Array {
  if (varying.length > 0) return assemble(fixed, varying);
  fixed.whole ??= assemble(fixed, varying);
  return fixed.whole;
}

/**
 * completeCheckResponse for volatile headers whose values are whole numbers (the rate-limit headers): `names` are the
 * headers' pre-encoded ASCII names, `values` pass allWriteableIntegers. The bytes equal those of the decimal strings.
 */
export function completeCheckResponseWithIntegers(
  fixed: FixedCheckResponse,
  names: readonly Uint8Array[],
  values: readonly number[],
): Uint8Array {
  const extra = integerOptionsSize(names, values);
  const out = frame(fixed, extra);
  writeIntegerOptions(out, out.length - extra, optionsField(fixed), names, values);
  return out;
}

/** head ‖ tag(field, LEN) ‖ varint(|inner|+|volatile|) ‖ inner ‖ volatile headers, written into one buffer. */
function assemble(entry: FixedCheckResponse, varying: readonly (readonly [string, string])[]): Uint8Array {
  const extra = headerOptionsSize(varying);
  const out = frame(entry, extra);
  writeHeaderOptions(out, out.length - extra, optionsField(entry), varying);
  return out;
}

/** A buffer holding head, tag, length and inner, with the last `extra` bytes left for the volatile headers. */
function frame(entry: FixedCheckResponse, extra: number): Buffer {
  const length = entry.inner.length + extra;
  // allocUnsafe takes small buffers from Node's pool; the caller writes the `extra` bytes left at the end.
  const out = Buffer.allocUnsafe(entry.head.length + 1 + varintSize(length) + length);
  out.set(entry.head, 0);
  let pos = entry.head.length;
  out[pos++] = (entry.field << 3) | 2;
  pos = writeVarint(out, pos, length);
  out.set(entry.inner, pos);
  return out;
}

/** OkHttpResponse.response_headers_to_add is field 6, DeniedHttpResponse.headers field 2. */
function optionsField(entry: FixedCheckResponse): number {
  return entry.field === 3 ? 6 : 2;
}
