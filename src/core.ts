import type { Sql } from "postgres";
import { ROOT_KEY_SPACE_ID } from "./admin/admin-policy.js";
import { createApprovalService } from "./admin/approvals.js";
import { createAdminServices } from "./admin/services.js";
import { createCachedKeySpaces } from "./cache/cached-key-spaces.js";
import { applyChange, listenForChanges } from "./cache/invalidation.js";
import { createKeyCache } from "./cache/key-cache.js";
import type { Config } from "./config.js";
import { type AuthorizerOptions, createAuthorizer } from "./domain/authorizer.js";
import { createDigester } from "./domain/digest.js";
import type { Logger } from "./log.js";
import {
  instrumentKeyLookup,
  instrumentKeySpaceSource,
  instrumentLimiter,
} from "./observability/backends.js";
import type { BackendCells } from "./observability/metrics.js";
import type { Observability } from "./observability/observability.js";
import type { OutboxBacklog } from "./observability/state-metrics.js";
import { createLeasingLimiter, type LeaseBackend } from "./ratelimit/lease-limiter.js";
import { createPostgresApprovalGate } from "./store/approval-gate.js";
import type { Change } from "./store/db.js";
import { isDatabaseUnavailable } from "./store/errors.js";
import { createPostgresKeyLookup, createPostgresKeySpaces } from "./store/key-lookup.js";
import { createDatabaseProbe, watchDatabase } from "./store/probe.js";
import { createUsageRecorder } from "./store/usage-recorder.js";
import { readOutboxBacklog } from "./webhooks/outbox-backlog.js";
import { startOutboxWorker } from "./webhooks/outbox-worker.js";
import { webhookSigningSecret } from "./webhooks/sign.js";

/** The settings the core reads. */
export type CoreConfig = Pick<
  Config,
  | "cacheTtlMs"
  | "cacheMaxEntries"
  | "negativeCacheTtlMs"
  | "negativeCacheMaxEntries"
  | "lastUsedFlushMs"
  | "defaultKeySpace"
  | "rateLimitFailure"
  | "rateLimitLeaseMs"
  | "checkDeadlineMs"
  | "approvalTtlSeconds"
  | "approvalHeader"
  | "webhookPollMs"
  | "webhookBackoffMs"
  | "webhookMaxAttempts"
  | "dbProbeTimeoutMs"
  | "redisUrl"
  | "redisClusterNodes"
>;

const ADMIN_AUTH_DEADLINE_MS = 5000;

// Often enough that readiness follows a hung database within about a second plus the probe's timeout.
const DATABASE_PROBE_INTERVAL_MS = 1000;

/** Builds the admin services and the authorizer with its caches, listening for changes; nothing serves yet. */
export async function createCore(options: {
  config: CoreConfig;
  sql: Sql;
  pepper: string;
  limiter: LeaseBackend | undefined;
  logger: Logger;
  observability: Observability;
}) {
  const { config, sql, logger, observability } = options;
  const { metrics, tracing } = observability;
  const digest = createDigester(options.pepper);
  const cache = createKeyCache({
    ttlMs: config.cacheTtlMs,
    maxEntries: config.cacheMaxEntries,
    negativeTtlMs: config.negativeCacheTtlMs,
    negativeMaxEntries: config.negativeCacheMaxEntries,
  });
  const keySpaces = createCachedKeySpaces(
    instrumentKeySpaceSource(
      createPostgresKeySpaces(sql),
      { load: metrics.database("key_space_load"), list: metrics.database("key_space_list") },
      isDatabaseUnavailable,
      tracing,
    ),
    config.cacheTtlMs,
  );
  // Labels name key spaces by id whichever spelling a request used; only key spaces already cached are resolved.
  // Labels read only what the authorizer already loaded: a lookup of their own would let any KeyVerify caller's
  // text reach Postgres a second time, and its failure would go unhandled.
  observability.lookupKeySpacesWith((idOrName) => keySpaces.peek(idOrName));
  const limiterBackend = config.redisUrl || config.redisClusterNodes.length > 0 ? "redis" : "memory";
  const backend = options.limiter;
  const instrumented =
    backend && instrumentLimiter(backend, limiterBackend, metrics.limiter(limiterBackend), tracing);
  // Leases only pay off where the limiter is shared: the memory limiter is already local.
  const leasing =
    instrumented && limiterBackend === "redis" && config.rateLimitLeaseMs > 0
      ? createLeasingLimiter(
          {
            consume: (request) => instrumented.consume(request),
            giveBack: (request, amount) => backend.giveBack(request, amount),
            // The server closes the backend itself, after this core.
            close: async () => {},
          },
          { leaseMs: config.rateLimitLeaseMs },
        )
      : undefined;
  const limiter = leasing ?? instrumented;
  const usage = createUsageRecorder(sql, { flushMs: config.lastUsedFlushMs, logger });
  let limiterFailures = 0;
  let limiterFailuresLogged = 0;
  let limiterLoggedAt = Number.NEGATIVE_INFINITY;
  const authorizerOptions: AuthorizerOptions = {
    keySpaces,
    lookup: instrumentKeyLookup(
      createPostgresKeyLookup(sql),
      metrics.database("key_lookup"),
      isDatabaseUnavailable,
      tracing,
    ),
    cache,
    digest,
    limiter,
    usage,
    defaultKeySpace: config.defaultKeySpace,
    rateLimitFailure: config.rateLimitFailure,
    deadlineMs: config.checkDeadlineMs,
    approvals: createPostgresApprovalGate(sql, config.approvalTtlSeconds),
    approvalHeader: config.approvalHeader,
    onLimiterFailure: (error) => {
      limiterFailures++;
      // The first failure, then at most one line a second, so that a Redis outage does not flood the log
      // (keymesh_rate_limiter_failures_total counts every one).
      const now = performance.now();
      if (now - limiterLoggedAt < 1000) return;
      limiterLoggedAt = now;
      logger.warn("rate limiter failed", {
        error,
        failures: limiterFailures,
        sinceLastLine: limiterFailures - limiterFailuresLogged,
      });
      limiterFailuresLogged = limiterFailures;
    },
  };
  // Root keys authenticate KeyAdmin only: Check, /authz and KeyVerify answer for them as for unknown keys.
  const authorizer = createAuthorizer({ ...authorizerOptions, excludedKeySpaceId: ROOT_KEY_SPACE_ID });
  // KeyAdmin callers are people and scripts, not Envoy: a busy instance should not refuse them at 150 ms.
  const adminAuthorizer = createAuthorizer({ ...authorizerOptions, deadlineMs: ADMIN_AUTH_DEADLINE_MS });
  const listener = await listenForChanges(sql, { keys: cache, keySpaces }, logger);
  // This instance's own changes apply before the admin call returns; NOTIFY carries them to the others.
  const announce = (change: Change) => applyChange({ keys: cache, keySpaces }, change);
  const signingSecret = webhookSigningSecret(options.pepper);
  const outbox = startOutboxWorker({
    sql,
    secret: signingSecret,
    logger,
    pollMs: config.webhookPollMs,
    backoffMs: config.webhookBackoffMs,
    maxAttempts: config.webhookMaxAttempts,
    onDelivery: (outcome) => metrics.state.deliveries[outcome].value++,
  });
  const probeDatabase = createDatabaseProbe(sql, { timeoutMs: config.dbProbeTimeoutMs });
  const probeCells = metrics.database("probe");
  const health = watchDatabase(probeDatabase, {
    intervalMs: DATABASE_PROBE_INTERVAL_MS,
    logger,
    onProbe: (ok, seconds) => {
      probeCells.duration.observe(seconds);
      if (!ok) probeCells.failures.unavailable.value++;
    },
  });
  metrics.state.cache = () => ({ ...cache.stats(), entries: cache.size });
  metrics.state.databaseUp = () => health.up;
  metrics.state.outbox = outboxBacklogReader(
    sql,
    metrics.database("outbox_backlog"),
    config.dbProbeTimeoutMs,
  );
  return {
    admin: createAdminServices({ sql, digest, pepper: options.pepper, signingSecret, announce }),
    approvals: createApprovalService(sql, announce),
    signingSecret,
    outbox,
    authorizer,
    adminAuthorizer,
    cache,
    usage,
    /** Metrics, tracing and the decision log, for the transports. */
    observability,
    /** Asks the database now, for readiness. */
    probeDatabase,
    /** Stops applying change notifications; only the cache TTL then bounds staleness (used by tests). */
    stopListening: () => listener.stop(),
    async close() {
      // Unspent leases go back while the limiter can still take them.
      await leasing?.close();
      health.stop();
      await outbox.stop();
      await listener.stop();
      await usage.close();
    },
  };
}

/**
 * Reads the outbox backlog for a scrape, giving up after `timeoutMs` (the metric then keeps its last figures) so
 * that a hung database does not hang /metrics.
 */
function outboxBacklogReader(sql: Sql, cells: BackendCells, timeoutMs: number) {
  return async (): Promise<OutboxBacklog | undefined> => {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), timeoutMs);
    });
    try {
      const backlog = await Promise.race([readOutboxBacklog(sql), timedOut]);
      if (!backlog) cells.failures.unavailable.value++;
      return backlog;
    } catch (error) {
      if (isDatabaseUnavailable(error)) cells.failures.unavailable.value++;
      else cells.failures.error.value++;
      return undefined;
    } finally {
      clearTimeout(timer);
      cells.duration.observe((performance.now() - started) / 1000);
    }
  };
}

/** The core's API. */
export type Core = Awaited<ReturnType<typeof createCore>>;
