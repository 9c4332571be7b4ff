import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { Sql } from "postgres";
import { createAdminServices } from "./admin/services.js";
import { createApp } from "./app.js";
import type { Config } from "./config.js";
import { type Core, createCore } from "./core.js";
import { createDigester } from "./domain/digest.js";
import { persistentSecret, startEmbeddedPostgres } from "./embedded-postgres.js";
import { createHealth, type Health } from "./health.js";
import type { Logger } from "./log.js";
import { createObservability } from "./observability/observability.js";
import { createTracing } from "./observability/tracing.js";
import type { LeaseBackend } from "./ratelimit/lease-limiter.js";
import { createMemoryLimiter } from "./ratelimit/memory-limiter.js";
import { createRedisLimiter } from "./ratelimit/redis-limiter.js";
import { createSql } from "./store/db.js";
import { isInsufficientPrivilege } from "./store/errors.js";
import { migrate } from "./store/migrate.js";
import { auditLogRisks } from "./store/roles.js";
import { createTeardown, type Teardown } from "./teardown.js";
import { listenGrpcH2 } from "./transport/grpc-h2/listen.js";
import { listenHttp } from "./transport/listen.js";
import { webhookSigningSecret } from "./webhooks/sign.js";

/** A running keymesh instance. */
export interface RunningServer {
  httpPort: number;
  grpcPort: number;
  core: Core;
  /** What both ports' health services and `/readyz` report. */
  health: Health;
  /**
   * The graceful stop, for SIGTERM: NOT_SERVING everywhere and 503 on `/readyz` at once, calls still answered for
   * `drainMs` (default: the configured drain period) so that load balancers and Envoy stop sending, then `close()`.
   */
  shutdown(drainMs?: number): Promise<void>;
  /** Closes now: the listeners (GOAWAY; calls in flight get the shutdown grace period), then every backend. */
  close(): Promise<void>;
}

/** Where the service and its migrations connect; the embedded default starts a server with both roles. */
async function locateDatabase(
  config: Config,
  logger: Logger,
  teardown: Teardown,
): Promise<{ serviceUrl: string; migrationUrl: string; pepper: string }> {
  let serviceUrl = config.databaseUrl;
  let migrationUrl = config.databaseMigrationUrl ?? config.databaseUrl;
  if (!serviceUrl || !migrationUrl) {
    const embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPostgresPort,
      logger,
    });
    teardown.add("embedded postgres", () => embedded.stop());
    serviceUrl = embedded.serviceUrl;
    migrationUrl = embedded.url;
  }
  // Config guarantees a pepper with an external database; the embedded default keeps one beside its data.
  const pepper = config.pepper ?? (await persistentSecret(config.dataDir, "pepper"));
  return { serviceUrl, migrationUrl, pepper };
}

/** Applies migrations as the migration role, over a connection of its own that is closed afterwards. */
async function migrateAs(url: string, config: Config, logger: Logger): Promise<string[]> {
  const sql = createSql(url, {
    max: 1,
    connectTimeoutMs: config.dbConnectTimeoutMs,
    // Migration 004 warns when it cannot create the service role; routine notices are not worth a log line.
    onnotice: (notice) => {
      if (notice.severity === "WARNING") logger.warn("migration warning", { detail: notice.message });
    },
  });
  try {
    return await migrate(sql);
  } catch (error) {
    if (isInsufficientPrivilege(error)) {
      throw new Error(
        "migrations are pending and this database role may not apply them; run `keymesh migrate` with DATABASE_MIGRATION_URL set to the schema's owner",
      );
    }
    throw error;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Opens the service's pool, every statement and wait bounded, and warns if its role could rewrite the audit log. */
async function openServicePool(
  url: string,
  config: Config,
  logger: Logger,
  teardown: Teardown,
): Promise<Sql> {
  const sql = createSql(url, {
    max: config.dbPoolMax,
    statementTimeoutMs: config.dbStatementTimeoutMs,
    lockTimeoutMs: config.dbLockTimeoutMs,
    connectTimeoutMs: config.dbConnectTimeoutMs,
  });
  teardown.add("postgres pool", () => sql.end({ timeout: 5 }));
  const risks = await auditLogRisks(sql);
  if (risks.length > 0) {
    logger.warn(
      "the service's database role can rewrite the audit log; set DATABASE_URL to a role granted keymesh_service and DATABASE_MIGRATION_URL to the owner (docs/security.md)",
      { risks },
    );
  }
  return sql;
}

async function openLimiter(config: Config, logger: Logger): Promise<LeaseBackend> {
  if (config.redisClusterNodes.length === 0 && !config.redisUrl) {
    logger.info("REDIS_URL is unset: rate limits are kept in memory for this instance only");
    return createMemoryLimiter();
  }
  const limiter = createRedisLimiter(
    config.redisClusterNodes.length > 0
      ? { cluster: { nodes: config.redisClusterNodes }, commandTimeoutMs: config.redisTimeoutMs }
      : { url: config.redisUrl, commandTimeoutMs: config.redisTimeoutMs },
  );
  try {
    await limiter.ready(5000);
  } catch (error) {
    // Serving without Redis is what the rate-limit failure policy is for; it reconnects in the background.
    logger.warn("redis is not reachable yet; the rate-limit failure policy applies until it is", { error });
  }
  return limiter;
}

/** Where a worker process connects, as its primary prepared it: migrations are applied already. */
export interface PreparedDatabase {
  serviceUrl: string;
  pepper: string;
}

/**
 * The composition root: opens every backend, serves both ports, and registers teardown in reverse order. With
 * `prepared` (a worker process), the primary has started the database, applied migrations and created the first
 * root key, so none of that is done again here.
 */
export async function startServer(
  config: Config,
  logger: Logger,
  options: {
    onRootKey?: (secret: string) => void;
    /** Receives every span instead of the configured exporter, and turns tracing on (tests). */
    spanExporter?: SpanExporter;
    prepared?: PreparedDatabase;
  } = {},
): Promise<RunningServer> {
  const teardown = createTeardown((name, error) =>
    logger.error("teardown step failed", { step: name, error }),
  );
  try {
    let db = options.prepared;
    if (!db) {
      const located = await locateDatabase(config, logger, teardown);
      await migrateAs(located.migrationUrl, config, logger);
      db = located;
    }
    const sql = await openServicePool(db.serviceUrl, config, logger, teardown);
    const pepper = db.pepper;
    const limiter = await openLimiter(config, logger);
    teardown.add("rate limiter", () => limiter.close());
    const tracing = await createTracing(config.tracing, { exporter: options.spanExporter });
    const observability = createObservability({ config, logger, tracing });
    // Registered before the listeners, so it runs after they close: the last spans are exported.
    teardown.add("tracing", () => observability.close());
    const core = await createCore({ config, sql, pepper, limiter, logger, observability });
    teardown.add("core", () => core.close());
    const health = createHealth({
      probeDatabase: core.probeDatabase,
      cachedKeys: () => core.cache.size,
      minCachedKeys: config.readyMinCachedKeys,
    });
    const app = createApp({ core, config, logger, health });
    const http = await listenHttp(app.httpHandler, {
      host: config.host,
      port: config.httpPort,
      closeGraceMs: config.shutdownGraceMs,
      limits: {
        maxHeaderBytes: config.httpMaxHeaderBytes,
        headersTimeoutMs: config.httpHeadersTimeoutMs,
        requestTimeoutMs: config.httpRequestTimeoutMs,
        idleTimeoutMs: config.httpIdleTimeoutMs,
      },
    });
    teardown.add("http listener", () => http.close());
    const grpc = await listenGrpcH2(app.grpcServer, { host: config.host, port: config.grpcPort });
    teardown.add("grpc listener", () => grpc.close(config.shutdownGraceMs));
    // Watch streams would otherwise hold their connections open through the grace period.
    teardown.add("health watchers", () => health.end());
    observability.metrics.state.streamMaps.set("http", http.streamMaps);
    observability.metrics.state.streamMaps.set("grpc", grpc.streamMaps);
    if (!options.prepared) {
      const root = await core.admin.bootstrap();
      if (root) options.onRootKey?.(root.secret);
    }
    health.listening();
    // A close() during the drain (a second signal) ends the drain early.
    let endDrain = () => {};
    const close = () => {
      endDrain();
      return teardown.run();
    };
    return {
      httpPort: http.port,
      grpcPort: grpc.port,
      core,
      health,
      close,
      async shutdown(drainMs = config.drainMs) {
        health.drain();
        logger.info("draining: reporting NOT_SERVING and still answering", { drainMs });
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, drainMs);
          endDrain = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        logger.info("drain period over: closing the listeners", {
          graceMs: config.shutdownGraceMs,
        });
        await close();
      },
    };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

/** Applies migrations and exits: the `migrate` command. */
export async function migrateOnly(config: Config, logger: Logger): Promise<string[]> {
  const teardown = createTeardown();
  try {
    const db = await locateDatabase(config, logger, teardown);
    return await migrateAs(db.migrationUrl, config, logger);
  } finally {
    await teardown.run();
  }
}

/** Applies migrations and creates the first root key if none exists, over a pool closed before it returns. */
async function migrateAndBootstrap(
  config: Config,
  logger: Logger,
  teardown: Teardown,
): Promise<PreparedDatabase & { rootKey: string | undefined }> {
  const { serviceUrl, migrationUrl, pepper } = await locateDatabase(config, logger, teardown);
  await migrateAs(migrationUrl, config, logger);
  const sql = await openServicePool(serviceUrl, config, logger, createTeardown());
  try {
    const signingSecret = webhookSigningSecret(pepper);
    const admin = createAdminServices({ sql, digest: createDigester(pepper), pepper, signingSecret });
    const issued = await admin.bootstrap();
    return { serviceUrl, pepper, rootKey: issued?.secret };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Creates the first root key if none exists: the `bootstrap` command. */
export async function bootstrapOnce(config: Config, logger: Logger): Promise<string | undefined> {
  const teardown = createTeardown();
  try {
    return (await migrateAndBootstrap(config, logger, teardown)).rootKey;
  } finally {
    await teardown.run();
  }
}

/**
 * The primary's one-time work before it starts workers: the embedded Postgres (left running, stopped by `teardown`),
 * migrations and the first root key. Workers then start with `startServer(…, { prepared })`.
 */
export function prepareForWorkers(
  config: Config,
  logger: Logger,
  teardown: Teardown,
): Promise<PreparedDatabase & { rootKey: string | undefined }> {
  return migrateAndBootstrap(config, logger, teardown);
}
