import { createHash } from "node:crypto";
import { EXPIRY_MARGIN_MS, TOKEN_EPSILON } from "./bucket-math.js";

/** Reply status of the script: every bucket charged. */
export const SCRIPT_ALLOWED = 1;
/** Reply status of the script: some bucket lacked tokens, nothing charged. */
export const SCRIPT_DENIED = 0;
/** Reply status of the script: it ran after the caller's deadline, so it did nothing. */
export const SCRIPT_STALE = -1;

/**
 * Checks and charges every bucket of one request atomically, mirroring `bucket-math.ts`.
 *
 * KEYS: one hash per bucket, fields `t` (tokens, a double) and `ts` (last update, Redis µs).
 * ARGV: cost, deadline (Redis µs, 0 for none), then capacity and periodSeconds for each key.
 * Reply: { status, now µs as a string, tokens after the decision as strings }. Strings, because Redis truncates
 * Lua numbers in replies to integers; "%.17g" round-trips a double exactly.
 */
export const CONSUME_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local cost = tonumber(ARGV[1])
local deadline = tonumber(ARGV[2])
-- A request the client already gave up on (Redis was stalled) must not be charged when Redis wakes up.
if deadline > 0 and now > deadline then
  return {${SCRIPT_STALE}, string.format('%.0f', now)}
end
local eps = ${TOKEN_EPSILON}
local margin = ${EXPIRY_MARGIN_MS}
local n = #KEYS
local caps, periods, tokens = {}, {}, {}
local allowed = true
for i = 1, n do
  local cap = tonumber(ARGV[1 + 2 * i])
  local period = tonumber(ARGV[2 + 2 * i])
  caps[i], periods[i] = cap, period
  local h = redis.call('HMGET', KEYS[i], 't', 'ts')
  local stored, ts = tonumber(h[1]), tonumber(h[2])
  local v = cap
  if stored ~= nil and ts ~= nil then
    local elapsed_ms = (now - ts) / 1000
    if elapsed_ms < 0 then elapsed_ms = 0 end
    v = math.min(cap, math.min(stored, cap) + elapsed_ms * cap / (period * 1000))
  end
  tokens[i] = v
  if v + eps < cost then allowed = false end
end
local reply = {allowed and ${SCRIPT_ALLOWED} or ${SCRIPT_DENIED}, string.format('%.0f', now)}
for i = 1, n do
  local v = tokens[i]
  if allowed then
    v = math.max(0, v - cost)
    redis.call('HSET', KEYS[i], 't', string.format('%.17g', v), 'ts', string.format('%.0f', now))
    -- A key that expires only once its bucket is full again loses nothing: a missing key reads as full.
    local ttl = math.ceil((caps[i] - v) / caps[i] * periods[i] * 1000) + margin
    redis.call('PEXPIRE', KEYS[i], ttl)
  end
  reply[#reply + 1] = string.format('%.17g', v)
end
return reply
`;

/** SHA1 of the script, for EVALSHA. */
export const CONSUME_SHA = createHash("sha1").update(CONSUME_LUA).digest("hex");
