import { availableParallelism } from "node:os";
import { type TracingConfig, tracingConfig } from "./config-tracing.js";
import { ConfigError, type Env, fraction, header, int, oneOf, secret, url } from "./config-values.js";

export { TRACE_SAMPLERS, type TraceSampler, type TracingConfig } from "./config-tracing.js";
export { ConfigError } from "./config-values.js";

/**
 * Every setting keymesh reads, validated once at boot; the only module that reads `process.env` (and the files that
 * secret settings may name instead).
 */
export interface Config {
  /** External Postgres; when absent keymesh runs an embedded one in `dataDir`. */
  databaseUrl: string | undefined;
  /** The role migrations run as (the schema owner); defaults to `databaseUrl`, which the service then runs as. */
  databaseMigrationUrl: string | undefined;
  /** Server-side limits on every statement and lock wait of the service's pool, in milliseconds. */
  dbStatementTimeoutMs: number;
  dbLockTimeoutMs: number;
  dbConnectTimeoutMs: number;
  /** How long the readiness probe waits for the database to answer. */
  dbProbeTimeoutMs: number;
  /** Connections in each worker's pool; a worker also holds one more for LISTEN. */
  dbPoolMax: number;
  /** The longest a KeyAdmin call may take; a client's shorter timeout wins. */
  adminDeadlineMs: number;
  dataDir: string;
  embeddedPostgresPort: number;
  /**
   * Processes serving the same ports (Node's cluster module); 1 serves from the one process with no primary.
   * Defaults to the machine's available parallelism with Redis, and to 1 without it (see workersSetting).
   */
  workers: number;
  /** Redis for rate limits; when absent an in-memory limiter serves a single instance. */
  redisUrl: string | undefined;
  redisClusterNodes: { host: string; port: number }[];
  redisTimeoutMs: number;
  /** HMAC pepper for key digests; generated and kept in `dataDir` only in embedded mode. */
  pepper: string | undefined;
  host: string;
  httpPort: number;
  grpcPort: number;
  /** What a backend failure does to a check: a 503 denial, or a gRPC UNAVAILABLE for Envoy's failure_mode_allow. */
  failureMode: "deny" | "error";
  /** What a rate-limiter failure does: allow with a warning header, or a 503 denial. */
  rateLimitFailure: "open" | "closed";
  /** How long a busy key's rate-limit lease lives (KEYMESH_RATE_LIMIT_LEASE_MS); 0 charges Redis on every request. */
  rateLimitLeaseMs: number;
  checkDeadlineMs: number;
  cacheTtlMs: number;
  cacheMaxEntries: number;
  negativeCacheTtlMs: number;
  negativeCacheMaxEntries: number;
  lastUsedFlushMs: number;
  identityHeaderPrefix: string;
  defaultKeySpace: string;
  logLevel: "debug" | "info" | "warn" | "error";
  /** How long a queued approval may be approved and redeemed. */
  approvalTtlSeconds: number;
  /** The header a client retries an approved request with. */
  approvalHeader: string;
  webhookPollMs: number;
  webhookBackoffMs: number;
  webhookMaxAttempts: number;
  /** After SIGTERM, how long NOT_SERVING is reported while calls are still answered, before the listeners close. */
  drainMs: number;
  /** Once the listeners close, how long calls in flight may take before they are cut off. */
  shutdownGraceMs: number;
  /** Cached keys that let the check path stay ready while the database is unreachable (0: never). */
  readyMinCachedKeys: number;
  /** Largest Connect, gRPC or gRPC-Web message the HTTP port reads, compressed and after decompression. */
  httpReadMaxBytes: number;
  /** Largest request header block on the HTTP port (HTTP/1.1 header size, HTTP/2 header list size). */
  httpMaxHeaderBytes: number;
  /** Time for a request's headers (and a new connection's first request) to arrive on the HTTP port. */
  httpHeadersTimeoutMs: number;
  /** Time for a whole request, headers and body, to arrive on the HTTP port. */
  httpRequestTimeoutMs: number;
  /** How long an HTTP/1.1 keep-alive connection or an HTTP/2 session with no open stream stays open. */
  httpIdleTimeoutMs: number;
  /** Largest request body the HTTP `/authz` endpoint accepts (Envoy `with_request_body`). */
  authzMaxBodyBytes: number;
  /** Largest gRPC message the gRPC port accepts, compressed and after decompression. */
  grpcMaxReceiveBytes: number;
  /** Largest gRPC metadata (HTTP/2 header list) the gRPC port accepts. */
  grpcMaxMetadataBytes: number;
  /** How long a gRPC connection with no call in progress stays open. */
  grpcIdleTimeoutMs: number;
  /** Interval of the gRPC port's keepalive pings. */
  grpcKeepaliveTimeMs: number;
  /** How long the gRPC port waits for a keepalive ping's answer before closing the connection. */
  grpcKeepaliveTimeoutMs: number;
  /** Distinct key spaces that get their own `key_space` metric label; the rest are counted as `other`. */
  metricsKeySpaceLabels: number;
  /** Share of decisions written to the decision log, 0 (off) to 1. */
  decisionLogSampleRate: number;
  /** OpenTelemetry tracing, from the standard OTEL_* variables; off unless an exporter is named. */
  tracing: TracingConfig;
  /** Calls one connection to the gRPC port may have open at once (HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS). */
  grpcMaxConcurrentStreams: number;
}

const KiB = 1024;
const MiB = 1024 * KiB;

function clusterNodes(env: Env): { host: string; port: number }[] {
  const raw = env.REDIS_CLUSTER_NODES;
  if (!raw) return [];
  return raw.split(",").map((entry) => {
    const match = /^([^:\s]+):(\d{1,5})$/.exec(entry.trim());
    if (!match)
      throw new ConfigError("REDIS_CLUSTER_NODES", `must be host:port[,host:port…], got "${entry}"`);
    return { host: match[1]!, port: Number(match[2]) };
  });
}

/**
 * Worker processes: each enforces rate limits through the shared limiter, so an in-memory limiter (no Redis) would
 * let every worker grant the whole limit. Without Redis the default is one worker and more is refused, never
 * silently multiplied.
 */
function workersSetting(env: Env, hasRedis: boolean, parallelism: number): number {
  const raw = env.KEYMESH_WORKERS;
  if (raw === undefined || raw === "") return hasRedis ? Math.max(1, Math.min(parallelism, 256)) : 1;
  const workers = int(env, "KEYMESH_WORKERS", 1, 1, 256);
  if (workers > 1 && !hasRedis) {
    throw new ConfigError(
      "KEYMESH_WORKERS",
      `is ${workers}, but without REDIS_URL (or REDIS_CLUSTER_NODES) rate limits are kept in each process's memory and ${workers} workers would each grant the whole limit; set REDIS_URL, or KEYMESH_WORKERS=1`,
    );
  }
  return workers;
}

/**
 * Reads and validates the configuration; throws ConfigError naming the first bad setting. `parallelism` is the
 * default worker count with Redis (the machine's available parallelism).
 */
export function loadConfig(env: Env = process.env, parallelism = availableParallelism()): Config {
  const pepperSecret = secret(env, "KEYMESH_PEPPER");
  const pepper = pepperSecret.value;
  if (pepper !== undefined && pepper.length < 32) {
    throw new ConfigError(pepperSecret.setting, "must be at least 32 characters");
  }
  const database = secret(env, "DATABASE_URL");
  const databaseUrl = url(database, ["postgres:", "postgresql:"]);
  if (databaseUrl && !pepper) {
    throw new ConfigError(
      "KEYMESH_PEPPER",
      `is required when ${database.setting} is set (32+ random characters, or a file named by KEYMESH_PEPPER_FILE)`,
    );
  }
  const databaseMigrationUrl = url(secret(env, "DATABASE_MIGRATION_URL"), ["postgres:", "postgresql:"]);
  if (databaseMigrationUrl && !databaseUrl) {
    throw new ConfigError("DATABASE_MIGRATION_URL", "needs DATABASE_URL (the service role) as well");
  }
  const prefix = header(env, "KEYMESH_IDENTITY_HEADER_PREFIX", "x-keymesh-");
  const redisTimeoutMs = int(env, "KEYMESH_REDIS_TIMEOUT_MS", 100, 1, 10_000);
  const checkDeadlineMs = int(env, "KEYMESH_CHECK_DEADLINE_MS", 150, 10, 10_000);
  // A script still pending when its Check is answered could charge a request that was answered as not counted.
  if (redisTimeoutMs >= checkDeadlineMs) {
    throw new ConfigError(
      "KEYMESH_REDIS_TIMEOUT_MS",
      `must be below KEYMESH_CHECK_DEADLINE_MS (${checkDeadlineMs}), got ${redisTimeoutMs}`,
    );
  }
  const httpHeadersTimeoutMs = int(env, "KEYMESH_HTTP_HEADERS_TIMEOUT_MS", 10_000, 100, 300_000);
  const httpRequestTimeoutMs = int(env, "KEYMESH_HTTP_REQUEST_TIMEOUT_MS", 30_000, 100, 3_600_000);
  // Node's HTTP/1.1 server refuses a headers timeout longer than the request timeout.
  if (httpRequestTimeoutMs < httpHeadersTimeoutMs) {
    throw new ConfigError(
      "KEYMESH_HTTP_REQUEST_TIMEOUT_MS",
      `must be at least KEYMESH_HTTP_HEADERS_TIMEOUT_MS (${httpHeadersTimeoutMs}), got ${httpRequestTimeoutMs}`,
    );
  }
  const redisUrl = url(secret(env, "REDIS_URL"), ["redis:", "rediss:"]);
  const redisClusterNodes = clusterNodes(env);
  const workers = workersSetting(env, redisUrl !== undefined || redisClusterNodes.length > 0, parallelism);
  return {
    databaseUrl,
    databaseMigrationUrl,
    dbStatementTimeoutMs: int(env, "KEYMESH_DB_STATEMENT_TIMEOUT_MS", 5_000, 100, 600_000),
    dbLockTimeoutMs: int(env, "KEYMESH_DB_LOCK_TIMEOUT_MS", 3_000, 100, 600_000),
    dbConnectTimeoutMs: int(env, "KEYMESH_DB_CONNECT_TIMEOUT_MS", 5_000, 100, 600_000),
    dbProbeTimeoutMs: int(env, "KEYMESH_DB_PROBE_TIMEOUT_MS", 1_000, 50, 60_000),
    dbPoolMax: int(env, "KEYMESH_DB_POOL_MAX", 10, 1, 1000),
    adminDeadlineMs: int(env, "KEYMESH_ADMIN_DEADLINE_MS", 5_000, 100, 600_000),
    dataDir: env.KEYMESH_DATA_DIR || ".keymesh",
    embeddedPostgresPort: int(env, "KEYMESH_EMBEDDED_PG_PORT", 54329, 1024, 65535),
    workers,
    redisUrl,
    redisClusterNodes,
    redisTimeoutMs,
    pepper,
    host: env.KEYMESH_HOST || "127.0.0.1",
    httpPort: int(env, "KEYMESH_HTTP_PORT", 8080, 0, 65535),
    grpcPort: int(env, "KEYMESH_GRPC_PORT", 9090, 0, 65535),
    failureMode: oneOf(env, "KEYMESH_FAILURE_MODE", ["deny", "error"], "deny"),
    rateLimitFailure: oneOf(env, "KEYMESH_RATE_LIMIT_FAILURE", ["open", "closed"], "open"),
    rateLimitLeaseMs: int(env, "KEYMESH_RATE_LIMIT_LEASE_MS", 100, 0, 10_000),
    checkDeadlineMs,
    cacheTtlMs: int(env, "KEYMESH_CACHE_TTL_MS", 30_000, 100, 3_600_000),
    cacheMaxEntries: int(env, "KEYMESH_CACHE_MAX_ENTRIES", 100_000, 10, 10_000_000),
    negativeCacheTtlMs: int(env, "KEYMESH_NEGATIVE_CACHE_TTL_MS", 5_000, 0, 3_600_000),
    negativeCacheMaxEntries: int(env, "KEYMESH_NEGATIVE_CACHE_MAX_ENTRIES", 10_000, 0, 10_000_000),
    lastUsedFlushMs: int(env, "KEYMESH_LAST_USED_FLUSH_MS", 1_000, 10, 600_000),
    identityHeaderPrefix: prefix,
    defaultKeySpace: env.KEYMESH_DEFAULT_KEY_SPACE ?? "",
    logLevel: oneOf(env, "KEYMESH_LOG_LEVEL", ["debug", "info", "warn", "error"], "info"),
    approvalTtlSeconds: int(env, "KEYMESH_APPROVAL_TTL_SECONDS", 86_400, 60, 30 * 86_400),
    approvalHeader: header(env, "KEYMESH_APPROVAL_HEADER", "x-keymesh-approval"),
    webhookPollMs: int(env, "KEYMESH_WEBHOOK_POLL_MS", 500, 10, 60_000),
    webhookBackoffMs: int(env, "KEYMESH_WEBHOOK_BACKOFF_MS", 1_000, 10, 3_600_000),
    webhookMaxAttempts: int(env, "KEYMESH_WEBHOOK_MAX_ATTEMPTS", 12, 1, 100),
    drainMs: int(env, "KEYMESH_DRAIN_MS", 5_000, 0, 300_000),
    shutdownGraceMs: int(env, "KEYMESH_SHUTDOWN_GRACE_MS", 5_000, 0, 300_000),
    readyMinCachedKeys: int(env, "KEYMESH_READY_MIN_CACHED_KEYS", 1, 0, 10_000_000),
    httpReadMaxBytes: int(env, "KEYMESH_HTTP_READ_MAX_BYTES", MiB, 1024, 64 * MiB),
    httpMaxHeaderBytes: int(env, "KEYMESH_HTTP_MAX_HEADER_BYTES", 16 * KiB, 1024, MiB),
    httpHeadersTimeoutMs,
    httpRequestTimeoutMs,
    httpIdleTimeoutMs: int(env, "KEYMESH_HTTP_IDLE_TIMEOUT_MS", 65_000, 100, 3_600_000),
    authzMaxBodyBytes: int(env, "KEYMESH_AUTHZ_MAX_BODY_BYTES", 64 * KiB, 0, 16 * MiB),
    grpcMaxReceiveBytes: int(env, "KEYMESH_GRPC_MAX_RECEIVE_BYTES", 4 * MiB, 64 * KiB, 64 * MiB),
    grpcMaxMetadataBytes: int(env, "KEYMESH_GRPC_MAX_METADATA_BYTES", 16 * KiB, 1024, MiB),
    grpcIdleTimeoutMs: int(env, "KEYMESH_GRPC_IDLE_TIMEOUT_MS", 300_000, 1000, 86_400_000),
    grpcKeepaliveTimeMs: int(env, "KEYMESH_GRPC_KEEPALIVE_TIME_MS", 60_000, 1000, 86_400_000),
    grpcKeepaliveTimeoutMs: int(env, "KEYMESH_GRPC_KEEPALIVE_TIMEOUT_MS", 20_000, 100, 600_000),
    metricsKeySpaceLabels: int(env, "KEYMESH_METRICS_KEY_SPACES", 50, 1, 10_000),
    decisionLogSampleRate: fraction(env, "KEYMESH_DECISION_LOG_SAMPLE", 0),
    tracing: tracingConfig(env),
    grpcMaxConcurrentStreams: int(env, "KEYMESH_GRPC_MAX_CONCURRENT_STREAMS", 1000, 1, 1_000_000),
  };
}
