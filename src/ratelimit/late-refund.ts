import { createHash, randomBytes } from "node:crypto";
import { settleWithin } from "../runtime/deadline.js";
import { EXPIRY_MARGIN_MS } from "./bucket-math.js";
import { SCRIPT_ALLOWED } from "./redis-script.js";
import type { ScriptRequest } from "./script-codec.js";

/** How long a refund's marker lives: far longer than its retries take, so a retry never gives back twice. */
const MARKER_TTL_MS = 600_000;

/**
 * Gives back tokens a consume charged for requests whose callers had already been answered as not counted (the
 * reply came after the client's deadline), and the unspent tokens of rate-limit leases. Each bucket is refilled to
 * Redis's now as the consume script does, then credited, capped at its capacity: for a token bucket that is exactly
 * the state it would have had without the charge. A bucket that no longer exists is full, so it gets nothing.
 *
 * KEYS: the buckets, then a marker key in their slot. The script sets the marker (NX) first and does nothing when
 * it already exists, so sending a refund again after a timeout cannot credit twice.
 * ARGV[1]: little-endian doubles, per bucket its capacity, periodSeconds and the tokens to give back.
 * Reply: 1 when applied, 0 when the marker showed it had been applied before.
 */
export const REFUND_LUA = `
if redis.replicate_commands then redis.replicate_commands() end
local n = #KEYS - 1
if not redis.call('SET', KEYS[n + 1], '1', 'NX', 'PX', ${MARKER_TTL_MS}) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now_text = string.format('%.0f', now)
local args = ARGV[1]
local pos = 1
for i = 1, n do
  local cap, period, amount
  cap, period, amount, pos = struct.unpack('<ddd', args, pos)
  -- A bucket Redis cannot read was never charged: the consume script refused its request.
  local h = redis.pcall('HMGET', KEYS[i], 't', 'ts')
  if not h.err then
    local stored, ts = tonumber(h[1]), tonumber(h[2])
    if stored ~= nil and ts ~= nil then
      local elapsed_ms = (now - ts) / 1000
      if elapsed_ms < 0 then elapsed_ms = 0 end
      local v = math.min(cap, math.min(stored, cap) + elapsed_ms * cap / (period * 1000) + amount)
      redis.call('HSET', KEYS[i], 't', string.format('%.17g', v), 'ts', now_text)
      redis.call('PEXPIRE', KEYS[i], math.ceil((cap - v) / cap * period * 1000) + ${EXPIRY_MARGIN_MS})
    end
  end
end
return 1
`;

/** SHA1 of the refund script, for EVALSHA. */
export const REFUND_SHA = createHash("sha1").update(REFUND_LUA).digest("hex");

/** Sends one refund script call: its keys and its binary argument. */
export type RefundRunner = (keys: string[], args: Buffer) => Promise<unknown>;

/** Bounds on the refunds in flight. */
export interface RefunderOptions {
  /** How long one attempt may take before it counts as failed (it may still be applied later, once). */
  timeoutMs: number;
  /** Attempts per refund, the first included (default 3). */
  attempts?: number;
  /** Refunds in flight at most; past it a late reply's charge is left in place (default 1024). */
  maxPending?: number;
}

/** What happened to the refunds so far. */
export interface RefundCounts {
  /** Refund calls started, one per late reply that charged something. */
  started: number;
  /** Refunds Redis confirmed, applied now or by an earlier attempt. */
  confirmed: number;
  /** Refunds abandoned after their last attempt failed (they may still have been applied). */
  abandoned: number;
  /** Late charges left in place because too many refunds were in flight. */
  dropped: number;
}

/** Gives back what late replies charged, and leases' unspent tokens; best effort, bounded, never twice per charge. */
export interface Refunder {
  /** Refunds every request of a late call whose reply says it was charged. */
  refundLate(requests: readonly ScriptRequest[], replies: readonly unknown[]): void;
  /** Gives `tokens` back to every bucket of one request (a lease's unspent tokens). */
  giveBack(request: ScriptRequest, tokens: number): void;
  /** Resolves once no refund is in flight. */
  idle(): Promise<void>;
  readonly counts: Readonly<RefundCounts>;
}

/** Creates the refunder over `run`, which sends REFUND_LUA. */
export function createRefunder(run: RefundRunner, options: RefunderOptions): Refunder {
  const attempts = options.attempts ?? 3;
  const maxPending = options.maxPending ?? 1024;
  const counts: RefundCounts = { started: 0, confirmed: 0, abandoned: 0, dropped: 0 };
  let pending = 0;
  let waiters: (() => void)[] = [];

  const finish = () => {
    pending--;
    if (pending > 0) return;
    const ready = waiters;
    waiters = [];
    for (const wake of ready) wake();
  };

  const send = (keys: string[], args: Buffer, attempt: number): void => {
    const timedOut = () => {
      throw new Error("refund timed out");
    };
    let sent: Promise<unknown>;
    try {
      sent = run(keys, args);
    } catch (error) {
      // A client that throws instead of rejecting must not crash the process from a reply or timer callback.
      sent = Promise.reject(error);
    }
    settleWithin(sent, options.timeoutMs, timedOut).then(
      () => {
        counts.confirmed++;
        finish();
      },
      () => {
        if (attempt >= attempts) {
          counts.abandoned++;
          finish();
          return;
        }
        // Spaced out so that a Redis that stalled again has time to come back; the marker makes a resend harmless.
        setTimeout(() => send(keys, args, attempt + 1), 100 * 2 ** attempt).unref();
      },
    );
  };

  const refund = (buckets: RefundMap): void => {
    if (buckets.size === 0) return;
    if (pending >= maxPending) {
      counts.dropped++;
      return;
    }
    const keys = [...buckets.keys()];
    const args = Buffer.allocUnsafe(24 * keys.length);
    let at = 0;
    for (const { capacity, periodSeconds, tokens } of buckets.values()) {
      at = args.writeDoubleLE(capacity, at);
      at = args.writeDoubleLE(periodSeconds, at);
      at = args.writeDoubleLE(tokens, at);
    }
    keys.push(markerKey(keys[0]!));
    pending++;
    counts.started++;
    send(keys, args, 1);
  };

  return {
    counts,
    refundLate(requests, replies) {
      refund(chargedBuckets(requests, replies));
    },
    giveBack({ keys, limits }, tokens) {
      const map: RefundMap = new Map();
      for (let i = 0; i < keys.length; i++)
        map.set(keys[i]!, { capacity: limits[2 * i]!, periodSeconds: limits[2 * i + 1]!, tokens });
      refund(map);
    },
    idle() {
      return pending === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Tokens to give back per bucket key, with the bucket's limit. */
type RefundMap = Map<string, { capacity: number; periodSeconds: number; tokens: number }>;

/** Tokens to give back per bucket key: the cost of every request the reply says was charged, summed per bucket. */
function chargedBuckets(requests: readonly ScriptRequest[], replies: readonly unknown[]): RefundMap {
  const refund: RefundMap = new Map();
  for (let r = 0; r < requests.length; r++) {
    const reply = replies[r];
    // Only the status matters: an allowed request charged each of its buckets its cost.
    if (!Buffer.isBuffer(reply) || reply.length < 8 || reply.readDoubleLE(0) !== SCRIPT_ALLOWED) continue;
    const { keys, limits, cost } = requests[r]!;
    if (cost === 0) continue;
    for (let i = 0; i < keys.length; i++) {
      const entry = refund.get(keys[i]!);
      if (entry) entry.tokens += cost;
      else
        refund.set(keys[i]!, { capacity: limits[2 * i]!, periodSeconds: limits[2 * i + 1]!, tokens: cost });
    }
  }
  return refund;
}

/**
 * A fresh key beside `bucketKey`, sharing its hash tag (everything up to the first `}`, which closes the tag)
 * and so its Redis Cluster slot.
 */
function markerKey(bucketKey: string): string {
  const close = bucketKey.indexOf("}");
  const tagged = close >= 0 ? bucketKey.slice(0, close + 1) : bucketKey;
  return `${tagged}refund:${randomBytes(12).toString("base64url")}`;
}
