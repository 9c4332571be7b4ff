import { SCRIPT_ALLOWED, SCRIPT_DENIED, SCRIPT_FAILED, SCRIPT_STALE } from "./redis-script.js";

/** One consume as the script reads it (see CONSUME_LUA). */
export interface ScriptRequest {
  keys: readonly string[];
  /** Capacity and periodSeconds of each bucket in turn, in the order of `keys`. */
  limits: readonly number[];
  cost: number;
}

/** One request's answer from the script; a stale reply carries no tokens. */
export interface ScriptReply {
  status: typeof SCRIPT_ALLOWED | typeof SCRIPT_DENIED | typeof SCRIPT_STALE;
  /** Redis's time when the script ran, in ms. */
  nowMs: number;
  /** Tokens left in each bucket after the decision. */
  tokens: number[];
}

const DOUBLE = 8;

/**
 * ARGV[1] of the script: little-endian doubles, the request count and the call's deadline (Redis time in µs after
 * which the script charges nothing; 0 for none), then per request its cost and bucket count, and per bucket its
 * 1-based position in KEYS (from `slot`), capacity and periodSeconds.
 */
export function encodeRequests(
  slot: ReadonlyMap<string, number>,
  requests: readonly ScriptRequest[],
  deadlineUs: number,
): Buffer {
  let count = 2;
  for (const r of requests) count += 2 + 3 * r.keys.length;
  const out = Buffer.allocUnsafe(count * DOUBLE);
  let at = out.writeDoubleLE(requests.length, 0);
  at = out.writeDoubleLE(deadlineUs, at);
  for (const r of requests) {
    at = out.writeDoubleLE(r.cost, at);
    at = out.writeDoubleLE(r.keys.length, at);
    for (let i = 0; i < r.keys.length; i++) {
      at = out.writeDoubleLE(slot.get(r.keys[i]!) ?? Number.NaN, at);
      at = out.writeDoubleLE(r.limits[2 * i]!, at);
      at = out.writeDoubleLE(r.limits[2 * i + 1]!, at);
    }
  }
  return out;
}

/**
 * Reads one request's reply: doubles for status, Redis µs and each bucket's tokens. Throws on a reply of the
 * wrong shape, and with Redis's own words when Redis refused a bucket (e.g. WRONGTYPE: they name the command,
 * never a key or anything from the request).
 */
export function decodeReply(reply: unknown, buckets: number): ScriptReply {
  if (!Buffer.isBuffer(reply) || reply.length < 2 * DOUBLE) throw malformed();
  const status = reply.readDoubleLE(0);
  const nowMs = reply.readDoubleLE(DOUBLE) / 1000;
  if (!Number.isFinite(nowMs)) throw malformed();
  if (status === SCRIPT_FAILED) {
    throw new Error(`rate limiter: Redis refused a bucket: ${reply.toString("utf8", 2 * DOUBLE)}`);
  }
  if (status === SCRIPT_STALE && reply.length === 2 * DOUBLE) return { status, nowMs, tokens: [] };
  if ((status !== SCRIPT_ALLOWED && status !== SCRIPT_DENIED) || reply.length !== (2 + buckets) * DOUBLE) {
    throw malformed();
  }
  const tokens: number[] = [];
  for (let at = 2 * DOUBLE; at < reply.length; at += DOUBLE) {
    const value = reply.readDoubleLE(at);
    if (!Number.isFinite(value)) throw malformed();
    tokens.push(value);
  }
  return { status, nowMs, tokens };
}

function malformed(): Error {
  return new Error("rate limiter: malformed script reply");
}
