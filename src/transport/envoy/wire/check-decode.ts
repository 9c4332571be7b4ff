import type { CheckRequest } from "../../../domain/check-request.js";
import { WireHeaders } from "./wire-headers.js";
import { LEN, Malformed, Reader } from "./wire-reader.js";

/** The outcome of reading an ext_authz CheckRequest from the wire. */
export type DecodeResult = { ok: true; request: CheckRequest } | { ok: false; reason: string };

/** Limits that keep a hostile or broken request from costing more than a denial. */
export interface DecodeLimits {
  /** Total bytes of header names and values; beyond it the request is malformed. */
  maxHeaderBytes: number;
  /** Bytes of the request path. */
  maxPathBytes: number;
}

/** 64 KiB of headers (Envoy's own default cap is 60 KiB) and a 64 KiB path. */
export const DEFAULT_DECODE_LIMITS: Readonly<DecodeLimits> = Object.freeze({
  maxHeaderBytes: 64 * 1024,
  maxPathBytes: 64 * 1024,
});

// Field numbers from envoy/service/auth/v3/{external_auth,attribute_context}.proto and envoy/config/core/v3/base.proto.
const CHECK_REQUEST_ATTRIBUTES = 1;
const ATTRIBUTES_REQUEST = 4;
const ATTRIBUTES_CONTEXT_EXTENSIONS = 10;
const REQUEST_HTTP = 2;
const HTTP_METHOD = 2;
const HTTP_HEADERS = 3;
const HTTP_PATH = 4;
const HTTP_BODY = 11;
const HTTP_RAW_BODY = 12;
const HTTP_HEADER_MAP = 13;
const HEADER_MAP_HEADERS = 1;
const HEADER_VALUE_KEY = 1;
const HEADER_VALUE_VALUE = 2;
const HEADER_VALUE_RAW_VALUE = 3;
const MAP_KEY = 1;
const MAP_VALUE = 2;

// The context extensions (set per route in Envoy's ext_authz filter config) that keymesh reads, as bytes.
const EXTENSIONS: readonly Uint8Array[] = ["keymesh.key_space", "keymesh.scope", "keymesh.cost"].map((name) =>
  Buffer.from(name),
);
const KEY_SPACE_EXTENSION = 0;
const SCOPE_EXTENSION = 1;
const COST_EXTENSION = 2;

// Decoding is synchronous, so one scratch array serves every request and each request keeps an exact-size copy,
// allocating nothing that grows. It keeps the largest size seen, which the header budget bounds.
const spanScratch: number[] = [];

function pushSpan(state: State, a: number, b: number, c: number, d: number, e: number): void {
  const n = state.spanCount;
  spanScratch[n] = a;
  spanScratch[n + 1] = b;
  spanScratch[n + 2] = c;
  spanScratch[n + 3] = d;
  spanScratch[n + 4] = e;
  state.spanCount = n + 5;
}

interface State {
  limits: DecodeLimits;
  method: string;
  path: string;
  /** Numbers written to `spanScratch`: key and value bounds of each header entry, in wire order; see WireHeaders. */
  spanCount: number;
  headerBytes: number;
  /** Values of the context extensions keymesh reads, in EXTENSIONS order; undefined when absent. */
  extensions: (string | undefined)[];
  body: Uint8Array | undefined;
  rawBody: Uint8Array | undefined;
  sawHttp: boolean;
}

/** Reads the fields keymesh needs from CheckRequest bytes, skipping everything else; never throws. */
export function decodeCheckRequest(
  bytes: Uint8Array,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): DecodeResult {
  const buf = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const state: State = {
    limits,
    method: "",
    path: "",
    spanCount: 0,
    headerBytes: 0,
    extensions: [undefined, undefined, undefined],
    body: undefined,
    rawBody: undefined,
    sawHttp: false,
  };
  try {
    const r = new Reader(buf);
    // Each occurrence of a singular message field is read into the same state: protobuf's merge semantics.
    // A known field number with an unexpected wire type is an unknown field, as protobuf parsers treat it.
    while (r.next()) {
      if (r.isLen(CHECK_REQUEST_ATTRIBUTES)) readAttributes(r, state);
      else r.skip();
    }
  } catch (error) {
    if (error instanceof Malformed) return { ok: false, reason: error.message };
    return { ok: false, reason: "undecodable request" };
  }
  if (!state.sawHttp) return { ok: false, reason: "no HTTP request attributes" };
  const body = state.rawBody ?? state.body;
  const request: CheckRequest = {
    keySpace: state.extensions[KEY_SPACE_EXTENSION]?.trim() ?? "",
    scopes: parseScopes(state.extensions[SCOPE_EXTENSION]),
    method: state.method,
    path: state.path,
    headers: new WireHeaders(buf, spanScratch.slice(0, state.spanCount)),
    cost: parseCost(state.extensions[COST_EXTENSION]),
  };
  if (body) request.body = body;
  return { ok: true, request };
}

function readAttributes(r: Reader, state: State): void {
  const outer = r.enter();
  while (r.next()) {
    if (r.wireType !== LEN) r.skip();
    else if (r.field === ATTRIBUTES_REQUEST) readRequest(r, state);
    else if (r.field === ATTRIBUTES_CONTEXT_EXTENSIONS) readExtension(r, state);
    else r.skip();
  }
  r.leave(outer);
}

function readRequest(r: Reader, state: State): void {
  const outer = r.enter();
  while (r.next()) {
    if (r.isLen(REQUEST_HTTP)) readHttp(r, state);
    else r.skip();
  }
  r.leave(outer);
}

function readExtension(r: Reader, state: State): void {
  const outer = r.enter();
  let keyStart = 0;
  let keyStop = 0;
  let valueStart = 0;
  let valueStop = 0;
  while (r.next()) {
    if (r.isLen(MAP_KEY)) {
      r.bounds();
      keyStart = r.start;
      keyStop = r.stop;
    } else if (r.isLen(MAP_VALUE)) {
      r.bounds();
      valueStart = r.start;
      valueStop = r.stop;
    } else r.skip();
  }
  r.leave(outer);
  // Only keymesh's own keys are decoded, compared byte-wise first (ASCII names: equal bytes, equal strings). As in
  // a map, a later entry for a key replaces an earlier one.
  for (let i = 0; i < EXTENSIONS.length; i++) {
    if (bytesAre(r.buf, keyStart, keyStop, EXTENSIONS[i]!)) {
      state.extensions[i] = r.text(valueStart, valueStop);
      return;
    }
  }
}

function bytesAre(buf: Buffer, start: number, stop: number, expected: Uint8Array): boolean {
  if (stop - start !== expected.length) return false;
  for (let i = 0; i < expected.length; i++) if (buf[start + i] !== expected[i]) return false;
  return true;
}

function readHttp(r: Reader, state: State): void {
  state.sawHttp = true;
  const outer = r.enter();
  while (r.next()) {
    if (r.wireType !== LEN) {
      r.skip();
      continue;
    }
    switch (r.field) {
      case HTTP_METHOD:
        state.method = r.string();
        break;
      case HTTP_PATH:
        r.bounds();
        if (r.stop - r.start > state.limits.maxPathBytes) throw new Malformed("path too long");
        state.path = r.text(r.start, r.stop);
        break;
      case HTTP_HEADERS:
        // map<string,string>: a later entry for the same key replaces an earlier one.
        readHeader(r, state, MAP_KEY, MAP_VALUE, 0, false);
        break;
      case HTTP_HEADER_MAP: {
        const mapOuter = r.enter();
        while (r.next()) {
          // A repeated header (HeaderMap keeps each occurrence) is folded as HTTP does: comma-joined.
          if (r.isLen(HEADER_MAP_HEADERS)) {
            readHeader(r, state, HEADER_VALUE_KEY, HEADER_VALUE_VALUE, HEADER_VALUE_RAW_VALUE, true);
          } else r.skip();
        }
        r.leave(mapOuter);
        break;
      }
      case HTTP_BODY:
        // A proto3 string's bytes are the body as sent; no need to decode them. Copied: the body may outlive the call.
        r.bounds();
        if (r.stop > r.start) state.body = r.buf.subarray(r.start, r.stop).slice();
        break;
      case HTTP_RAW_BODY:
        r.bounds();
        if (r.stop > r.start) state.rawBody = r.buf.subarray(r.start, r.stop).slice();
        break;
      default:
        r.skip();
    }
  }
  r.leave(outer);
}

/** Records one header entry's bounds, charging its size to the header budget. */
function readHeader(
  r: Reader,
  state: State,
  keyField: number,
  valueField: number,
  rawField: number,
  fold: boolean,
): void {
  const outer = r.enter();
  state.headerBytes += r.end - r.pos;
  if (state.headerBytes > state.limits.maxHeaderBytes) throw new Malformed("headers too large");
  let keyStart = 0;
  let keyStop = 0;
  let valueStart = 0;
  let valueStop = 0;
  let rawStart = 0;
  let rawStop = 0;
  while (r.next()) {
    if (r.wireType !== LEN) r.skip();
    else if (r.field === keyField) {
      r.bounds();
      keyStart = r.start;
      keyStop = r.stop;
    } else if (r.field === valueField) {
      r.bounds();
      valueStart = r.start;
      valueStop = r.stop;
    } else if (r.field === rawField) {
      r.bounds();
      rawStart = r.start;
      rawStop = r.stop;
    } else r.skip();
  }
  r.leave(outer);
  // Envoy sets raw_value instead of value when it encodes raw headers. Text is decoded only when asked for.
  const raw = valueStop === valueStart;
  pushSpan(state, keyStart, keyStop, raw ? rawStart : valueStart, raw ? rawStop : valueStop, fold ? 1 : 0);
}

function parseScopes(raw: string | undefined): string[] {
  if (!raw) return [];
  return raw.split(/[\s,]+/).filter((s) => s.length > 0);
}

function parseCost(raw: string | undefined): number {
  const trimmed = raw?.trim();
  if (!trimmed || !/^\d{1,9}$/.test(trimmed)) return 0;
  return Number(trimmed);
}
