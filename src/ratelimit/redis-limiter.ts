import { Cluster, Redis } from "ioredis";
import { settleWithin } from "../domain/deadline.js";
import { buildResult, isFrozenBucketList, validateRequest } from "./bucket-math.js";
import { ClockOffset } from "./clock-offset.js";
import type { Bucket, LimitRequest, LimitResult, RateLimiter } from "./limiter.js";
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
export interface RedisRateLimiter extends RateLimiter {
  /** Resolves once the connection is ready; until then `consume` fails fast instead of queueing. */
  ready(timeoutMs?: number): Promise<void>;
}

/**
 * Extra time, beyond the client's own deadline, a script may start and still charge. The clock-offset estimate
 * already never undershoots for one node; this only absorbs Date.now()'s millisecond truncation and small skew.
 */
const DEADLINE_SLACK_MS = 20;

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

  const timeoutMessage = `rate limiter: Redis did not answer within ${timeoutMs} ms`;
  const batcher = createScriptBatcher<ScriptRequest>(
    (keys, slot, requests) => {
      const args = encodeRequests(slot, requests);
      // No async wrapper: this runs per batch of Checks, and the fallback is the rare path.
      return scripting.evalshaBuffer(CONSUME_SHA, keys.length, ...keys, args).catch((error: unknown) => {
        // The script cache is empty after a restart, failover or SCRIPT FLUSH; EVAL also reloads it.
        if (!(error instanceof Error) || !error.message.includes("NOSCRIPT")) throw error;
        return scripting.evalBuffer(CONSUME_LUA, keys.length, ...keys, args);
      });
    },
    // The one deadline of every script call, the NOSCRIPT fallback included.
    { timeoutMs, timeoutMessage },
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

  function attempt(request: LimitRequest, sentAtMs: number, offsetMs: number): Promise<unknown> {
    const { keys, limits } = prepare(request);
    const deadlineUs = Math.round((sentAtMs + timeoutMs + offsetMs + DEADLINE_SLACK_MS) * 1000);
    return batcher.submit(groupOf(request.tag), { keys, limits, cost: request.cost, deadlineUs });
  }

  // A chain of callbacks rather than async functions: this runs on every rate-limited Check.
  function settle(
    request: LimitRequest,
    raw: unknown,
    sentAtMs: number,
    retried: boolean,
  ): LimitResult | Promise<LimitResult> {
    const reply = decodeReply(raw, request.buckets.length);
    const receivedAtMs = Date.now();
    const upperBoundMs = reply.nowMs - sentAtMs;
    if (reply.status !== SCRIPT_STALE) {
      clock.observe(upperBoundMs, receivedAtMs);
      return buildResult(request, reply.status === SCRIPT_ALLOWED, reply.tokens, reply.nowMs);
    }
    // Refused as stale yet answered before our deadline: the script ran in time, so Redis's clock is further
    // ahead than estimated (another cluster node, or a clock step). Learn that and try once more, in what is left.
    const leftMs = sentAtMs + timeoutMs - receivedAtMs;
    if (retried || leftMs <= 0) {
      throw new Error("rate limiter: Redis ran the request after its deadline; nothing was charged");
    }
    clock.raise(upperBoundMs, receivedAtMs);
    const offsetMs = Math.max(clock.estimate(), upperBoundMs);
    return settleWithin(
      attempt(request, sentAtMs, offsetMs).then((again) => settle(request, again, sentAtMs, true)),
      leftMs,
      () => {
        throw new Error(timeoutMessage);
      },
    );
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
      const sentAtMs = Date.now();
      return attempt(request, sentAtMs, clock.estimate()).then((raw) =>
        settle(request, raw, sentAtMs, false),
      );
    },
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
