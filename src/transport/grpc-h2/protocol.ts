/**
 * The pieces of gRPC over HTTP/2 that are plain data: status codes, the `grpc-timeout` and `grpc-message` header
 * formats and the length-prefixed message envelope, as the protocol specifies them:
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 */

/** gRPC status codes (https://github.com/grpc/grpc/blob/master/doc/statuscodes.md), the ones this server sends. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
} as const;

/** Message encodings this server decodes, in `grpc-accept-encoding` form. */
export const ACCEPT_ENCODING = "identity,deflate,gzip";

/** The encodings a request's `grpc-encoding` may name. */
export type MessageEncoding = "identity" | "gzip" | "deflate";

/**
 * Reads `grpc-encoding`: absent means identity. Anything else (br, snappy, a typo) is undefined, answered
 * UNIMPLEMENTED with the accepted list, as the spec asks of an encoding the server does not support.
 */
export function parseEncoding(value: string | string[] | undefined): MessageEncoding | undefined {
  if (value === undefined) return "identity";
  if (value === "identity" || value === "gzip" || value === "deflate") return value;
  return undefined;
}

const TIMEOUT_UNIT_MS: Record<string, number> = {
  H: 3_600_000,
  M: 60_000,
  S: 1000,
  m: 1,
  u: 0.001,
  n: 0.000_001,
};

/** The longest delay a Node timer can hold (2^31 - 1 ms, about 24.8 days); a longer one would fire at once. */
export const MAX_TIMER_MS = 0x7fffffff;

/**
 * `grpc-timeout` in milliseconds: `TimeoutValue TimeoutUnit`, at most 8 ASCII digits then one of H M S m u n.
 * Undefined when absent, NaN when malformed (the caller answers INTERNAL, as grpc-go does).
 */
export function parseTimeout(value: string | string[] | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string" || value.length < 2 || value.length > 9) return Number.NaN;
  const unit = TIMEOUT_UNIT_MS[value[value.length - 1]!];
  const digits = value.slice(0, -1);
  if (unit === undefined || !/^[0-9]{1,8}$/.test(digits)) return Number.NaN;
  return Number(digits) * unit;
}

/**
 * Percent-encodes a `grpc-message`: bytes outside printable ASCII (0x20–0x7E) and `%` itself become `%XX` of
 * the UTF-8 bytes, so any text survives HTTP/2 header validation and decodes back exactly.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out +=
      byte < 0x20 || byte > 0x7e || byte === 0x25
        ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}`
        : String.fromCharCode(byte);
  }
  return out;
}

/** The inverse of encodeGrpcMessage, lenient as the spec asks: a malformed `%` sequence is kept as it is. */
export function decodeGrpcMessage(value: string): string {
  if (!value.includes("%")) return value;
  const bytes: number[] = [];
  for (let i = 0; i < value.length; i++) {
    const hex = value.slice(i + 1, i + 3);
    if (value[i] === "%" && /^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else bytes.push(...Buffer.from(value[i]!, "utf8"));
  }
  return Buffer.from(bytes).toString("utf8");
}

/** One uncompressed message in its 5-byte prefix (compressed flag 0, big-endian length), ready for a DATA frame. */
export function envelope(message: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(5 + message.byteLength);
  out[0] = 0;
  out.writeUInt32BE(message.byteLength, 1);
  out.set(message, 5);
  return out;
}

/**
 * Whether `content-type` names gRPC: `application/grpc`, optionally `+proto` and parameters. Other subtypes
 * (`+json`) would need a codec this server does not have; the spec asks for HTTP 415 then.
 */
export function isGrpcContentType(value: string | undefined): boolean {
  if (typeof value !== "string" || !value.startsWith("application/grpc")) return false;
  const rest = value.slice("application/grpc".length);
  return rest === "" || rest === "+proto" || rest[0] === ";" || rest.startsWith("+proto;");
}
