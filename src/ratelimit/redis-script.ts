import { createHash } from "node:crypto";
import { EXPIRY_MARGIN_MS, TOKEN_EPSILON } from "./bucket-math.js";

/** Reply status of the script: every bucket charged. */
export const SCRIPT_ALLOWED = 1;
/** Reply status of the script: some bucket lacked tokens, nothing charged. */
export const SCRIPT_DENIED = 0;
/** Reply status of the script: it ran after the call's deadline, so it did nothing. */
export const SCRIPT_STALE = -1;
/** Reply status of the script: Redis refused to read one of the request's buckets; nothing charged. */
export const SCRIPT_FAILED = -2;

/**
 * Checks and charges every bucket of each request in a batch, in order, mirroring `bucket-math.ts`. Requests are
 * batched only to save round trips and client work: each one is decided on its own, all of its buckets or none.
 *
 * KEYS: each bucket of the batch once, a hash with fields `t` (tokens, a double) and `ts` (last update, Redis µs).
 * ARGV[1]: little-endian doubles (see script-codec.ts): the request count and the call's deadline (Redis µs, 0 for
 * none), then per request its cost and bucket count, and per bucket its position in KEYS, capacity and periodSeconds.
 * Reply: one binary string per request, doubles again: status, Redis time in µs, then the tokens left in each
 * bucket after the decision. Binary both ways because parsing and formatting decimal text was most of the
 * script's work per request, and much of the client's. A request whose bucket cannot be read (a key of another
 * type) gets status "failed", the time and Redis's error text, and the others go on: Redis does not undo a
 * script's earlier writes when it stops on an error, so one bad key must not stop the batch. A bucket named by
 * several requests is read once and written once, after the last of them.
 */
export const CONSUME_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_text = string.format('%.0f', now)
local eps = ${TOKEN_EPSILON}
local margin = ${EXPIRY_MARGIN_MS}
local args = ARGV[1]
local count, deadline, pos = struct.unpack('<dd', args, 1)
local replies = {}
-- A call the client has already given up on (Redis was stalled, or busy) charges nothing: its callers were answered
-- as not counted.
if deadline > 0 and now > deadline then
  local stale = struct.pack('<dd', ${SCRIPT_STALE}, now)
  for r = 1, count do replies[r] = stale end
  return replies
end
-- The script runs atomically, so keeping each bucket here until the end is the same as writing it per request.
local seen = {}
-- Reused by every request: a request overwrites the first n entries and reads no further.
local keys, caps, periods, buckets, tokens = {}, {}, {}, {}, {}
local formats = {}
for r = 1, count do
  local cost, n
  cost, n, pos = struct.unpack('<dd', args, pos)
  for i = 1, n do
    local k
    k, caps[i], periods[i], pos = struct.unpack('<ddd', args, pos)
    keys[i] = KEYS[k]
  end
  local allowed = true
  local failed = nil
  for i = 1, n do
    local b = seen[keys[i]]
    if b == nil then
      local h = redis.pcall('HMGET', keys[i], 't', 'ts')
      if h.err then
        b = {err = h.err}
      else
        b = {stored = tonumber(h[1]), ts = tonumber(h[2]), dirty = false}
      end
      seen[keys[i]] = b
    end
    if b.err then
      failed = b.err
      break
    end
    local cap, period = caps[i], periods[i]
    local v = cap
    if b.stored ~= nil and b.ts ~= nil then
      local elapsed_ms = (now - b.ts) / 1000
      if elapsed_ms < 0 then elapsed_ms = 0 end
      v = math.min(cap, math.min(b.stored, cap) + elapsed_ms * cap / (period * 1000))
    end
    buckets[i], tokens[i] = b, v
    if v + eps < cost then allowed = false end
  end
  if failed then
    replies[r] = struct.pack('<dd', ${SCRIPT_FAILED}, now) .. failed
  else
    for i = 1, n do
      if allowed then
        local v = math.max(0, tokens[i] - cost)
        local b = buckets[i]
        b.stored, b.ts, b.dirty, b.cap, b.period = v, now, true, caps[i], periods[i]
        tokens[i] = v
      end
    end
    local format = formats[n]
    if format == nil then
      format = '<dd' .. string.rep('d', n)
      formats[n] = format
    end
    replies[r] = struct.pack(format, allowed and ${SCRIPT_ALLOWED} or ${SCRIPT_DENIED}, now, unpack(tokens, 1, n))
  end
end
for key, b in pairs(seen) do
  if b.dirty then
    redis.call('HSET', key, 't', string.format('%.17g', b.stored), 'ts', now_text)
    -- A key that expires only once its bucket is full again loses nothing: a missing key reads as full.
    redis.call('PEXPIRE', key, math.ceil((b.cap - b.stored) / b.cap * b.period * 1000) + margin)
  end
end
return replies
`;

/** SHA1 of the script, for EVALSHA. */
export const CONSUME_SHA = createHash("sha1").update(CONSUME_LUA).digest("hex");
