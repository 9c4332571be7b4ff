import { HeaderValueOption_HeaderAppendAction } from "../../../gen/envoy/config/core/v3/base_pb.js";

/** Encoded size of `varying` as repeated HeaderValueOption, tags and length prefixes included. */
export function headerOptionsSize(varying: readonly (readonly [string, string])[]): number {
  let total = 0;
  for (const [name, value] of varying) {
    const optionLength = optionBodySize(Buffer.byteLength(name, "utf8"), Buffer.byteLength(value, "utf8"));
    total += 1 + varintSize(optionLength) + optionLength;
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
    out[pos++] = tag;
    pos = writeVarint(out, pos, optionBodySize(n, v));
    // HeaderValueOption.header = 1: HeaderValue { key = 1; value = 2 (omitted when empty, as proto3 does) }
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint(out, pos, headerValueSize(n, v));
    out[pos++] = (1 << 3) | 2;
    pos = writeVarint(out, pos, n);
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

function headerValueSize(n: number, v: number): number {
  return 1 + varintSize(n) + n + (v > 0 ? 1 + varintSize(v) + v : 0);
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
