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
import type { RateLimiter } from "./domain/ports.js";
import type { Logger } from "./log.js";
import { createPostgresApprovalGate } from "./store/approval-gate.js";
import type { Change } from "./store/db.js";
import { createPostgresKeyLookup, createPostgresKeySpaces } from "./store/key-lookup.js";
import { createDatabaseProbe, watchDatabase } from "./store/probe.js";
import { createUsageRecorder } from "./store/usage-recorder.js";
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
  | "checkDeadlineMs"
  | "approvalTtlSeconds"
  | "approvalHeader"
  | "webhookPollMs"
  | "webhookBackoffMs"
  | "webhookMaxAttempts"
  | "dbProbeTimeoutMs"
>;

const ADMIN_AUTH_DEADLINE_MS = 5000;

// Often enough that readiness follows a hung database within about a second plus the probe's timeout.
const DATABASE_PROBE_INTERVAL_MS = 1000;

/** Builds the admin services and the authorizer with its caches, listening for changes; nothing serves yet. */
export async function createCore(options: {
  config: CoreConfig;
  sql: Sql;
  pepper: string;
  limiter: RateLimiter | undefined;
  logger: Logger;
}) {
  const { config, sql, logger } = options;
  const digest = createDigester(options.pepper);
  const cache = createKeyCache({
    ttlMs: config.cacheTtlMs,
    maxEntries: config.cacheMaxEntries,
    negativeTtlMs: config.negativeCacheTtlMs,
    negativeMaxEntries: config.negativeCacheMaxEntries,
  });
  const keySpaces = createCachedKeySpaces(createPostgresKeySpaces(sql), config.cacheTtlMs);
  const usage = createUsageRecorder(sql, { flushMs: config.lastUsedFlushMs, logger });
  let limiterFailures = 0;
  const authorizerOptions: AuthorizerOptions = {
    keySpaces,
    lookup: createPostgresKeyLookup(sql),
    cache,
    digest,
    limiter: options.limiter,
    usage,
    defaultKeySpace: config.defaultKeySpace,
    rateLimitFailure: config.rateLimitFailure,
    deadlineMs: config.checkDeadlineMs,
    approvals: createPostgresApprovalGate(sql, config.approvalTtlSeconds),
    approvalHeader: config.approvalHeader,
    onLimiterFailure: (error) => {
      limiterFailures++;
      // Logged once per 1,000 so that a Redis outage does not flood the log.
      if (limiterFailures % 1000 === 1)
        logger.warn("rate limiter failed", { error, failures: limiterFailures });
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
  });
  const probeDatabase = createDatabaseProbe(sql, { timeoutMs: config.dbProbeTimeoutMs });
  const health = watchDatabase(probeDatabase, { intervalMs: DATABASE_PROBE_INTERVAL_MS, logger });
  return {
    admin: createAdminServices({ sql, digest, pepper: options.pepper, signingSecret, announce }),
    approvals: createApprovalService(sql, announce),
    signingSecret,
    outbox,
    authorizer,
    adminAuthorizer,
    cache,
    usage,
    metrics: () => ({ limiterFailures, cachedKeys: cache.size, databaseUp: health.up }),
    /** Asks the database now, for readiness. */
    probeDatabase,
    /** Stops applying change notifications; only the cache TTL then bounds staleness (used by tests). */
    stopListening: () => listener.stop(),
    async close() {
      health.stop();
      await outbox.stop();
      await listener.stop();
      await usage.close();
    },
  };
}

/** The core's API. */
export type Core = Awaited<ReturnType<typeof createCore>>;
