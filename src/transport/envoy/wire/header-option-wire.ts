import { HeaderValueOption_HeaderAppendAction } from "../../../../gen/envoy/config/core/v3/base_pb.js";

/** Encoded size of `varying` as repeated HeaderValueOption, tags and length prefixes included. */
export function headerOptionsSize(varying: readonly (readonly [string, string])[]): number {
  let total = 0;
  for (const [name, value] of varying) {
    total += optionSize(Buffer.byteLength(name, "utf8"), Buffer.byteLength(value, "utf8"));
  }
  return total;
}

/**
 * Hand-encodes `varying` at `pos` as repeated HeaderValueOption in field `field` (OkHttpResponse.
 * response_headers_to_add = 6, DeniedHttpResponse.headers = 2) with OVERWRITE_IF_EXISTS_OR_ADD: a few dozen bytes
 * per request, where protobuf-es reflection would cost microseconds. Tests check the bytes decode exactly like the
 * protobuf-es encoding. `out` must have headerOptionsSize(varying) bytes free at `pos`; returns the end.
 */
export function writeHeaderOptions(
  out: Uint8Array & { write(text: string, offset: number, encoding: "utf8"): number },
  pos: number,
  field: number,
  varying: readonly (readonly [string, string])[],
): number {
  const tag = (field << 3) | 2;
  for (const [name, value] of varying) {
    const n = Buffer.byteLength(name, "utf8");
    const v = Buffer.byteLength(value, "utf8");
    pos = writeOptionHead(out, pos, tag, n, v);
    pos += out.write(name, pos, "utf8");
    if (v > 0) {
      out[pos++] = (2 << 3) | 2;
      pos = writeVarint(out, pos, v);
      pos += out.write(value, pos, "utf8");
    }
    // append_action = 3; keep_empty_value = 4, so that an empty value still overwrites a client-sent one.
    out[pos++] = 3 << 3;
    out[pos++] = HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD;
    if (v === 0) {
      out[pos++] = 4 << 3;
      out[pos++] = 1;
    }
  }
  return pos;
}

/**
 * Encoded size of header options named by pre-encoded ASCII `names`, with the whole numbers `values` (each in
 * [0, Number.MAX_SAFE_INTEGER]) written in decimal.
 */
export function integerOptionsSize(names: readonly Uint8Array[], values: readonly number[]): number {
  let total = 0;
  for (let i = 0; i < names.length; i++) total += optionSize(names[i]!.length, decimalDigits(values[i]!));
  return total;
}

/**
 * writeHeaderOptions for integerOptionsSize's inputs: the same bytes as the decimal strings would give, without
 * building those strings or measuring their UTF-8 length. The rate-limit headers of every limited allow take this path.
 */
export function writeIntegerOptions(
  out: Uint8Array,
  pos: number,
  field: number,
  names: readonly Uint8Array[],
  values: readonly number[],
): number {
  const tag = (field << 3) | 2;
  for (let i = 0; i < names.length; i++) {
    const name = names[i]!;
    let value = values[i]!;
    const n = name.length;
    const v = decimalDigits(value);
    pos = writeOptionHead(out, pos, tag, n, v);
    out.set(name, pos);
    pos += n;
    // A decimal number is never empty, so the value field is always present and keep_empty_value never needed.
    out[pos++] = (2 << 3) | 2;
    pos = writeVarint(out, pos, v);
    for (let d = pos + v - 1; d >= pos; d--) {
      out[d] = 0x30 + (value % 10);
      value = Math.floor(value / 10);
    }
    pos += v;
    out[pos++] = 3 << 3;
    out[pos++] = HeaderValueOption_HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD;
  }
  return pos;
}

/** Whether every value can take writeIntegerOptions: a whole number in [0, Number.MAX_SAFE_INTEGER]. */
export function allWriteableIntegers(values: readonly number[]): boolean {
  for (const value of values) if (!(Number.isSafeInteger(value) && value >= 0)) return false;
  return true;
}

function decimalDigits(n: number): number {
  let digits = 1;
  for (; n >= 10; n = Math.floor(n / 10)) digits++;
  return digits;
}

/**
 * Writes one option's tag and lengths up to its header name, for a name of `n` bytes and a value of `v`; returns
 * where the name goes.
 */
function writeOptionHead(out: Uint8Array, pos: number, tag: number, n: number, v: number): number {
  out[pos++] = tag;
  pos = writeVarint(out, pos, optionBodySize(n, v));
  // HeaderValueOption.header = 1: HeaderValue { key = 1; value = 2 (omitted when empty, as proto3 does) }
  out[pos++] = (1 << 3) | 2;
  pos = writeVarint(out, pos, headerValueSize(n, v));
  out[pos++] = (1 << 3) | 2;
  return writeVarint(out, pos, n);
}

function headerValueSize(n: number, v: number): number {
  return 1 + varintSize(n) + n + (v > 0 ? 1 + varintSize(v) + v : 0);
}

/** Bytes of one repeated HeaderValueOption for a name of `n` bytes and a value of `v`: tag, length and body. */
function optionSize(n: number, v: number): number {
  const body = optionBodySize(n, v);
  return 1 + varintSize(body) + body;
}

function optionBodySize(n: number, v: number): number {
  const headerValueLength = headerValueSize(n, v);
  return 1 + varintSize(headerValueLength) + headerValueLength + 2 + (v === 0 ? 2 : 0);
}

/** Bytes of `n` as a protobuf varint. */
export function varintSize(n: number): number {
  let size = 1;
  for (; n >= 0x80; n = Math.floor(n / 0x80)) size++;
  return size;
}

/** Writes `n` as a protobuf varint at `pos`; returns the end. */
export function writeVarint(out: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}
