import { createHash } from "node:crypto";
import { EXPIRY_MARGIN_MS, TOKEN_EPSILON } from "./bucket-math.js";

/** Reply status of the script: every bucket charged. */
export const SCRIPT_ALLOWED = 1;
/** Reply status of the script: some bucket lacked tokens, nothing charged. */
export const SCRIPT_DENIED = 0;
/** Reply status of the script: it ran after the caller's deadline, so it did nothing. */
export const SCRIPT_STALE = -1;
/** Reply status of the script: Redis refused to read one of the request's buckets; nothing charged. */
export const SCRIPT_FAILED = -2;

/**
 * Checks and charges every bucket of each request in a batch, in order, mirroring `bucket-math.ts`. Requests are
 * batched only to save round trips and client work: each one is decided on its own, all of its buckets or none.
 *
 * KEYS: each bucket of the batch once, a hash with fields `t` (tokens, a double) and `ts` (last update, Redis µs).
 * ARGV[1]: comma-separated numbers: the request count, then per request its cost, deadline (Redis µs, 0 for
 * none) and bucket count, and per bucket its position in KEYS, capacity and periodSeconds. One string rather than
 * an argument per number: building and parsing hundreds of arguments per call was most of the client's work.
 * Reply: one string per request, "status,now µs,tokens after the decision…" (tokens as "%.17g", which round-trips
 * a double; Redis would truncate Lua numbers to integers). A request whose bucket cannot be read (a key of another
 * type) gets "failed,now,Redis's error" and the others go on: Redis does not undo a script's earlier writes when it
 * stops on an error, so one bad key must not stop the batch. A bucket named by several requests is read once and
 * written once, after the last of them.
 */
export const CONSUME_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_text = string.format('%.0f', now)
local eps = ${TOKEN_EPSILON}
local margin = ${EXPIRY_MARGIN_MS}
local numbers = string.gmatch(ARGV[1], '[^,]+')
local function number() return tonumber(numbers()) end
-- The script runs atomically, so keeping each bucket here until the end is the same as writing it per request.
local seen = {}
local replies = {}
for r = 1, number() do
  local cost, deadline, n = number(), number(), number()
  local keys, caps, periods, buckets, tokens = {}, {}, {}, {}, {}
  for i = 1, n do
    keys[i], caps[i], periods[i] = KEYS[number()], number(), number()
  end
  -- A request the client already gave up on (Redis was stalled) must not be charged when Redis wakes up.
  if deadline > 0 and now > deadline then
    replies[r] = ${SCRIPT_STALE} .. ',' .. now_text
  else
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
      replies[r] = ${SCRIPT_FAILED} .. ',' .. now_text .. ',' .. failed
    else
      local reply = (allowed and '${SCRIPT_ALLOWED}' or '${SCRIPT_DENIED}') .. ',' .. now_text
      for i = 1, n do
        local v = tokens[i]
        if allowed then
          v = math.max(0, v - cost)
          local b = buckets[i]
          b.stored, b.ts, b.dirty, b.cap, b.period = v, now, true, caps[i], periods[i]
        end
        reply = reply .. ',' .. string.format('%.17g', v)
      end
      replies[r] = reply
    end
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
