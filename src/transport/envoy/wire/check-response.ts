import { create, toBinary } from "@bufbuild/protobuf";
import {
  type HeaderValueOption,
  HeaderValueOption_HeaderAppendAction,
  HeaderValueOptionSchema,
} from "../../../../gen/envoy/config/core/v3/base_pb.js";
import {
  type CheckResponse,
  CheckResponseSchema,
  DeniedHttpResponseSchema,
  OkHttpResponseSchema,
} from "../../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import type { StatusCode } from "../../../../gen/envoy/type/v3/http_status_pb.js";
import { type Decision, VOLATILE_HEADERS } from "../../decision.js";
import {
  headerOptionsSize,
  integerOptionsSize,
  varintSize,
  writeHeaderOptions,
  writeIntegerOptions,
  writeVarint,
} from "./header-option-wire.js";

type Header = [string, string];

function option(name: string, value: string): HeaderValueOption {
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
            headers: decision.upstreamHeaders.map(([n, v]) => option(n, v)),
            headersToRemove: decision.removeHeaders,
            responseHeadersToAdd: decision.responseHeaders.map(([n, v]) => option(n, v)),
          },
        }
      : {
          case: "deniedResponse",
          value: {
            status: { code: decision.httpStatus as StatusCode },
            headers: decision.responseHeaders.map(([n, v]) => option(n, v)),
            body: decision.body,
          },
        },
    dynamicMetadata: decision.dynamicMetadata,
  });
}

/** Encodes a decision as CheckResponse bytes with protobuf-es, uncached. */
export function encodeCheckResponse(decision: Decision): Uint8Array {
  return toBinary(CheckResponseSchema, buildCheckResponse(decision));
}

/**
 * The bytes of a decision that do not change between requests (everything but the rate-limit headers), ready to
 * take each request's volatile headers with `completeCheckResponse`. Opaque to callers.
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
  return encodeFixed(decision, partition(decision).fixed);
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

/** Encodes decisions, reusing the bytes of the part that does not change between requests. */
export interface CheckResponseEncoder {
  /**
   * Encodes `decision`. `cacheKey` picks the cache slot (default: the key id for allows, the message for denials);
   * a cached encoding is used only when its decision equals this one apart from the volatile rate-limit headers
   * (VOLATILE_HEADERS), so any key is safe and a poor one only costs hits.
   */
  encode(decision: Decision, cacheKey?: string): Uint8Array;
  /** Number of cached encodings. */
  readonly size: number;
  /** Encodings served from the cache, and built afresh, since creation (for metrics). */
  readonly hits: number;
  readonly misses: number;
  clear(): void;
}

interface Cached extends FixedCheckResponse {
  /** What the bytes were built from, compared on every encoder hit. */
  readonly source: Snapshot;
}

function partition(decision: Decision): { fixed: Header[]; varying: Header[] } {
  const fixed: Header[] = [];
  const varying: Header[] = [];
  for (const h of decision.responseHeaders)
    (VOLATILE_HEADERS.has(h[0].toLowerCase()) ? varying : fixed).push(h);
  return { fixed, varying };
}

/**
 * Creates an encoder with a bounded LRU of encodings. A hit is checked field by field against the decision (cheaper
 * than hashing a content key), so a cached encoding is never stale. Rate-limit headers (remaining, reset, Retry-After)
 * differ per request, so they are encoded separately and spliced in: protobuf merges a repeated field split across
 * two occurrences of its message.
 */
export function createCheckResponseEncoder(options: { maxEntries?: number } = {}): CheckResponseEncoder {
  const maxEntries = Math.max(0, options.maxEntries ?? 4096);
  const cache = new Map<string, Cached>();
  let hits = 0;
  let misses = 0;
  return {
    encode(decision, cacheKey) {
      const { fixed, varying } = partition(decision);
      const key =
        cacheKey ?? (decision.allowed ? (decision.upstreamHeaders[0]?.[1] ?? "") : decision.message);
      let entry = cache.get(key);
      if (entry && sameSource(entry.source, decision, fixed)) {
        hits++;
        // Refresh recency: a Map iterates in insertion order, so the first key is the least recently used.
        cache.delete(key);
        cache.set(key, entry);
      } else {
        misses++;
        entry = encodeFixed(decision, fixed);
        if (maxEntries > 0) {
          cache.delete(key);
          if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
          cache.set(key, entry);
        }
      }
      return completeCheckResponse(entry, varying);
    },
    get size() {
      return cache.size;
    },
    get hits() {
      return hits;
    },
    get misses() {
      return misses;
    },
    clear: () => cache.clear(),
  };
}

/** The parts of a decision that end up in the cached bytes. */
interface Snapshot {
  allowed: boolean;
  httpStatus: number;
  grpcCode: number;
  message: string;
  body: string;
  upstreamHeaders: Header[];
  removeHeaders: string[];
  fixed: Header[];
  dynamicMetadata: Record<string, string | string[]>;
}

function snapshot(d: Decision, fixed: Header[]): Snapshot {
  // Copies, so that a caller mutating its decision later cannot change what a cached entry claims to hold.
  const metadata: Record<string, string | string[]> = {};
  for (const k in d.dynamicMetadata) {
    const v = d.dynamicMetadata[k]!;
    metadata[k] = typeof v === "string" ? v : [...v];
  }
  return {
    allowed: d.allowed,
    httpStatus: d.httpStatus,
    grpcCode: d.grpcCode,
    message: d.message,
    body: d.body,
    upstreamHeaders: d.upstreamHeaders.map(([n, v]) => [n, v]),
    removeHeaders: [...d.removeHeaders],
    fixed: fixed.map(([n, v]) => [n, v]),
    dynamicMetadata: metadata,
  };
}

function sameSource(s: Snapshot, d: Decision, fixed: Header[]): boolean {
  if (s.allowed !== d.allowed || s.httpStatus !== d.httpStatus || s.grpcCode !== d.grpcCode) return false;
  if (s.message !== d.message || s.body !== d.body) return false;
  if (!sameHeaders(s.upstreamHeaders, d.upstreamHeaders) || !sameHeaders(s.fixed, fixed)) return false;
  if (!sameStrings(s.removeHeaders, d.removeHeaders)) return false;
  let count = 0;
  for (const k in d.dynamicMetadata) {
    count++;
    const a = s.dynamicMetadata[k];
    const b = d.dynamicMetadata[k]!;
    if (a === undefined || typeof a !== typeof b) return false;
    if (typeof a === "string" ? a !== b : !sameStrings(a, b as string[])) return false;
  }
  return count === Object.keys(s.dynamicMetadata).length;
}

function sameHeaders(a: Header[], b: Header[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  return true;
}

/** Whether two string lists are equal element by element. */
export function sameStrings(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function encodeFixed(decision: Decision, fixed: Header[]): Cached {
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
        headers: decision.upstreamHeaders.map(([n, v]) => option(n, v)),
        headersToRemove: decision.removeHeaders,
        responseHeadersToAdd: fixed.map(([n, v]) => option(n, v)),
      }),
    );
    return { source: snapshot(decision, fixed), head, field: 3, inner };
  }
  const inner = toBinary(
    DeniedHttpResponseSchema,
    create(DeniedHttpResponseSchema, {
      status: { code: decision.httpStatus as StatusCode },
      headers: fixed.map(([n, v]) => option(n, v)),
      body: decision.body,
    }),
  );
  return { source: snapshot(decision, fixed), head, field: 2, inner };
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
