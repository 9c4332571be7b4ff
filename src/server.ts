import type { Sql } from "postgres";
import { createAdminServices } from "./admin/services.js";
import { createApp } from "./app.js";
import type { Config } from "./config.js";
import { type Core, createCore } from "./core.js";
import { createDigester } from "./domain/digest.js";
import { persistentSecret, startEmbeddedPostgres } from "./embedded-postgres.js";
import type { Logger } from "./log.js";
import type { RateLimiter } from "./ratelimit/limiter.js";
import { createMemoryLimiter } from "./ratelimit/memory-limiter.js";
import { createRedisLimiter } from "./ratelimit/redis-limiter.js";
import { createSql } from "./store/db.js";
import { migrate } from "./store/migrate.js";
import { createTeardown, type Teardown } from "./teardown.js";
import { listenGrpc } from "./transport/envoy/listen-grpc.js";
import { listenHttp } from "./transport/listen.js";

/** A running keymesh instance. */
export interface RunningServer {
  httpPort: number;
  grpcPort: number;
  core: Core;
  /** Runs the registered teardown steps in reverse order. */
  close(): Promise<void>;
}

async function openDatabase(
  config: Config,
  logger: Logger,
  teardown: Teardown,
): Promise<{ sql: Sql; pepper: string }> {
  let url = config.databaseUrl;
  if (!url) {
    const embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      port: config.embeddedPostgresPort,
      logger,
    });
    teardown.add("embedded postgres", () => embedded.stop());
    url = embedded.url;
  }
  // Config guarantees a pepper with an external database; the embedded default keeps one beside its data.
  const pepper = config.pepper ?? (await persistentSecret(config.dataDir, "pepper"));
  const sql = createSql(url);
  teardown.add("postgres pool", () => sql.end({ timeout: 5 }));
  return { sql, pepper };
}

async function openLimiter(config: Config, logger: Logger): Promise<RateLimiter> {
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

/** The composition root: opens every backend, serves both ports, and registers teardown in reverse order. */
export async function startServer(
  config: Config,
  logger: Logger,
  options: { onRootKey?: (secret: string) => void } = {},
): Promise<RunningServer> {
  const teardown = createTeardown((name, error) =>
    logger.error("teardown step failed", { step: name, error }),
  );
  try {
    const { sql, pepper } = await openDatabase(config, logger, teardown);
    await migrate(sql);
    const limiter = await openLimiter(config, logger);
    teardown.add("rate limiter", () => limiter.close());
    const core = await createCore({ config, sql, pepper, limiter, logger });
    teardown.add("core", () => core.close());
    const app = createApp({ core, config, logger });
    const http = await listenHttp(app.httpHandler, {
      host: config.host,
      port: config.httpPort,
      limits: {
        maxHeaderBytes: config.httpMaxHeaderBytes,
        headersTimeoutMs: config.httpHeadersTimeoutMs,
        requestTimeoutMs: config.httpRequestTimeoutMs,
        idleTimeoutMs: config.httpIdleTimeoutMs,
      },
    });
    teardown.add("http listener", () => http.close());
    const grpc = await listenGrpc(app.grpcServer, {
      host: config.host,
      port: config.grpcPort,
      maxMetadataBytes: config.grpcMaxMetadataBytes,
    });
    teardown.add("grpc listener", () => grpc.close());
    const root = await core.admin.bootstrap();
    if (root) options.onRootKey?.(root.secret);
    return { httpPort: http.port, grpcPort: grpc.port, core, close: () => teardown.run() };
  } catch (error) {
    await teardown.run();
    throw error;
  }
}

/** Applies migrations and exits: the `migrate` command. */
export async function migrateOnly(config: Config, logger: Logger): Promise<string[]> {
  const teardown = createTeardown();
  try {
    const { sql } = await openDatabase(config, logger, teardown);
    return await migrate(sql);
  } finally {
    await teardown.run();
  }
}

/** Creates the first root key if none exists: the `bootstrap` command. */
export async function bootstrapOnce(config: Config, logger: Logger): Promise<string | undefined> {
  const teardown = createTeardown();
  try {
    const { sql, pepper } = await openDatabase(config, logger, teardown);
    await migrate(sql);
    const issued = await createAdminServices({ sql, digest: createDigester(pepper), pepper }).bootstrap();
    return issued?.secret;
  } finally {
    await teardown.run();
  }
}
