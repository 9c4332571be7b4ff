import { Cluster, Redis } from "ioredis";
import type { Bucket, LimitRequest, LimitResult } from "../domain/ports.js";
import { settleWithin } from "../runtime/deadline.js";
import { buildResult, isFrozenBucketList, validateRequest } from "./bucket-math.js";
import { ClockOffset } from "./clock-offset.js";
import { createRefunder, REFUND_LUA, REFUND_SHA, type RefundCounts } from "./late-refund.js";
import type { LeaseBackend } from "./lease-limiter.js";
import { CONSUME_LUA, CONSUME_SHA, SCRIPT_ALLOWED, SCRIPT_STALE } from "./redis-script.js";
import { createScriptBatcher } from "./script-batch.js";
import { decodeReply, encodeRequests, type ScriptRequest } from "./script-codec.js";

/** Where the Redis limiter keeps its buckets and how long it may wait for them. */
export interface RedisLimiterOptions {
  /** A standalone Redis, e.g. `redis://127.0.0.1:6379`. */
  url?: string;
  /** Seed nodes of a Redis Cluster. */
  cluster?: { nodes: { host: string; port: number }[] };
  /** A client the caller owns and configures (offline queue, retries); `close()` leaves it open. */
  client?: Redis | Cluster;
  /** How long one `consume` may take before it rejects (default 50). */
  commandTimeoutMs?: number;
  /** Prepended to `{tag}:<bucket id>` (default `km:rl:`); must not contain `{` or `}`. */
  keyPrefix?: string;
}

/** The Redis limiter, plus a way to wait for the first connection at boot. */
export interface RedisRateLimiter extends LeaseBackend {
  /** Resolves once the connection is ready; until then `consume` fails fast instead of queueing. */
  ready(timeoutMs?: number): Promise<void>;
  /** What became of the charges of replies that arrived after their callers were answered as not counted. */
  readonly refunds: Readonly<RefundCounts>;
}

/**
 * How much earlier than the client's own deadline a script must start to charge. The clock-offset estimate
 * never overshoots for one node; this absorbs drift since it was measured and a timer that fires a little early.
 */
const DEADLINE_MARGIN_MS = 2;

/** The least time a refund attempt may take: it is off the Check path, and giving up early only means a resend. */
const MIN_REFUND_TIMEOUT_MS = 1000;

/** Creates the token-bucket limiter backed by a Lua script on Redis or Redis Cluster, batched per event-loop turn. */
export function createRedisLimiter(options: RedisLimiterOptions): RedisRateLimiter {
  const timeoutMs = options.commandTimeoutMs ?? 50;
  if (!(Number.isFinite(timeoutMs) && timeoutMs > 0)) throw new RangeError("commandTimeoutMs must be > 0");
  const prefix = options.keyPrefix ?? "km:rl:";
  if (/[{}]/.test(prefix)) throw new RangeError("keyPrefix must not contain { or }: the tag is the hash tag");
  const owned = !options.client;
  const client = options.client ?? connect(options);
  if (owned) {
    // Each failed consume already rejects with its cause; without a listener ioredis would print every
    // reconnect attempt to stderr.
    client.on("error", () => {});
    if (client instanceof Cluster) client.on("node error", () => {});
  }
  const clock = new ClockOffset();
  let closed = false;
  // The script answers in binary, so replies must come back as Buffers, not decoded as UTF-8 text.
  const scripting = client as unknown as BufferScripting;

  // No async wrapper: this runs per batch of Checks, and the fallback is the rare path.
  const evaluate = (sha: string, lua: string, keys: string[], args: Buffer): Promise<unknown> =>
    scripting.evalshaBuffer(sha, keys.length, ...keys, args).catch((error: unknown) => {
      // The script cache is empty after a restart, failover or SCRIPT FLUSH; EVAL also reloads it.
      if (!(error instanceof Error) || !error.message.includes("NOSCRIPT")) throw error;
      return scripting.evalBuffer(lua, keys.length, ...keys, args);
    });

  // A charge whose reply arrives after its callers were answered as not counted is given back.
  const refunder = createRefunder((keys, args) => evaluate(REFUND_SHA, REFUND_LUA, keys, args), {
    timeoutMs: Math.max(MIN_REFUND_TIMEOUT_MS, timeoutMs),
  });
  // A late reply still tells the time in Redis.
  const observeLate = (replies: readonly unknown[]) => {
    const reply = replies[0];
    if (Buffer.isBuffer(reply) && reply.length >= 16) clock.observe(reply.readDoubleLE(8) / 1000, Date.now());
  };
  const timeoutMessage = `rate limiter: Redis did not answer within ${timeoutMs} ms`;
  const batcher = createScriptBatcher<ScriptRequest>(
    (keys, slot, requests, dueAt) => {
      // In Redis's clock, a little before the batch's callers are told it failed: a script that Redis runs later
      // (it was stalled, or busy) charges nothing.
      const deadlineUs = Math.floor((dueAt + clock.estimate() - DEADLINE_MARGIN_MS) * 1000);
      return evaluate(CONSUME_SHA, CONSUME_LUA, keys, encodeRequests(slot, requests, deadlineUs));
    },
    // The one deadline of every script call, the NOSCRIPT fallback included.
    {
      timeoutMs,
      timeoutMessage,
      onLate: (requests, replies) => {
        observeLate(replies);
        refunder.refundLate(requests, replies);
      },
    },
  );
  // A script's keys must share a slot on a cluster, and a request's keys share its tag; one Redis takes any mix.
  const groupOf = client instanceof Cluster ? (tag: string) => tag : () => "";

  // The Redis keys and limit numbers of a bucket list, built once per list: callers reuse bucket lists (one per
  // cached key entry), so this saves string building on every Check.
  const prepared = new WeakMap<readonly Bucket[], { tag: string; keys: string[]; limits: number[] }>();
  function prepare(request: LimitRequest): { keys: string[]; limits: number[] } {
    const hit = prepared.get(request.buckets);
    if (hit && hit.tag === request.tag) return hit;
    const keys = request.buckets.map((b) => `${prefix}{${request.tag}}:${b.id}`);
    const limits = request.buckets.flatMap((b) => [b.limit.capacity, b.limit.periodSeconds]);
    // A caller may change a mutable list, or a bucket in it, between calls.
    if (isFrozenBucketList(request.buckets))
      prepared.set(request.buckets, { tag: request.tag, keys, limits });
    return { keys, limits };
  }

  // A callback rather than an async function: this runs on every rate-limited Check.
  function settle(request: LimitRequest, raw: unknown): LimitResult {
    const reply = decodeReply(raw, request.buckets.length);
    clock.observe(reply.nowMs, Date.now());
    if (reply.status === SCRIPT_STALE) {
      // Not retried: a retry could only charge after the deadline its caller is held to. Read before our own timer
      // fired, it ran within a hair of the deadline, our timer is late, or Redis's clock is ahead of the estimate
      // (first contact, another cluster node), which this reply has just taught it.
      throw new Error("rate limiter: Redis ran the request after its deadline; nothing was charged");
    }
    return buildResult(request, reply.status === SCRIPT_ALLOWED, reply.tokens, reply.nowMs);
  }

  return {
    consume(request) {
      try {
        validateRequest(request);
      } catch (error) {
        return Promise.reject(error);
      }
      if (request.buckets.length === 0) return Promise.resolve({ allowed: true, statuses: [] });
      if (closed) return Promise.reject(new Error("rate limiter is closed"));
      const { keys, limits } = prepare(request);
      return batcher
        .submit(groupOf(request.tag), { keys, limits, cost: request.cost })
        .then((raw) => settle(request, raw));
    },
    giveBack(request, amount) {
      if (closed || !(amount > 0) || request.buckets.length === 0) return;
      refunder.giveBack({ ...prepare(request), cost: 0 }, amount);
    },
    refunds: refunder.counts,
    async ready(readyTimeoutMs = 10_000) {
      if (client.status === "ready") return;
      if (client.status === "wait") client.connect().catch(() => {});
      await new Promise<void>((resolve, reject) => {
        const finish = (error?: Error) => {
          clearTimeout(timer);
          client.off("ready", onReady);
          client.off("end", onEnd);
          if (error) reject(error);
          else resolve();
        };
        const onReady = () => finish();
        const onEnd = () => finish(new Error("rate limiter: Redis connection ended"));
        const timer = setTimeout(
          () => finish(new Error(`rate limiter: Redis not ready within ${readyTimeoutMs} ms`)),
          readyTimeoutMs,
        );
        client.once("ready", onReady);
        client.once("end", onEnd);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      // Refunds in flight are still owed; give them a moment before the connection goes.
      await settleWithin(refunder.idle(), 1000, () => undefined);
      if (!owned) return;
      try {
        await settleWithin(client.quit(), 1000, () => {
          throw new Error("quit timed out");
        });
      } catch {
        // QUIT cannot reach a down or stalled Redis; dropping the socket also stops reconnecting.
        client.disconnect();
      }
    },
  };
}

/**
 * ioredis's EVALSHA and EVAL with Buffer replies: on every client and cluster at runtime, missing from its typings.
 * (`callBuffer("evalsha", …)` is typed, but auto-pipelining, on for a cluster, loses its command name.)
 */
interface BufferScripting {
  evalshaBuffer(sha: string, keyCount: number, ...args: (string | Buffer)[]): Promise<unknown>;
  evalBuffer(script: string, keyCount: number, ...args: (string | Buffer)[]): Promise<unknown>;
}

function connect(options: RedisLimiterOptions): Redis | Cluster {
  // No ioredis commandTimeout: the batch deadline gives the same bound, and it runs after the event loop's I/O when
  // the process was stalled (a long GC pause), so replies that arrived meanwhile are read first. ioredis's timer ran
  // first and failed such calls open although Redis had answered, and charged, in time.
  const perConnection = {
    // A command that lost its connection fails now; resending it after a reconnect would charge a request
    // whose caller was already told the limiter failed.
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: 2000,
  };
  // Without an offline queue, a consume during a disconnect rejects at once instead of waiting and then
  // being applied late; the caller's failure policy (open or closed) decides instead.
  const enableOfflineQueue = false;
  if (options.cluster) {
    return new Cluster(options.cluster.nodes, {
      enableOfflineQueue,
      // The batcher sends one script call per hash tag and turn; auto-pipelining puts the calls bound for one node
      // into one socket write.
      enableAutoPipelining: true,
      clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
      redisOptions: perConnection,
    });
  }
  if (!options.url) throw new TypeError("createRedisLimiter needs one of url, cluster or client");
  return new Redis(options.url, {
    ...perConnection,
    enableOfflineQueue,
    // The batcher already sends one script call per turn. Auto-pipelining would wrap it in a pipeline of one and
    // defer it by another tick: in a loop of 128 consumes in flight, turning it off cut client CPU per consume by
    // about a quarter and doubled the rate.
    enableAutoPipelining: false,
    retryStrategy: (times) => Math.min(50 * times, 1000),
  });
}
