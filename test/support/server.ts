import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import { inject } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { KeyVerify } from "../../gen/keymesh/v1/verify_pb.js";
import { internalActor } from "../../src/admin/admin-policy.js";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/log.js";
import { type RunningServer, startServer } from "../../src/server.js";
import { createTestDatabase } from "./database.js";

/** A keymesh server on free ports over its own fresh database, with a root key and clients. */
export interface TestServer {
  server: RunningServer;
  rootKey: string;
  databaseUrl: string;
  httpUrl: string;
  grpcAddress: string;
  admin: Client<typeof KeyAdmin>;
  adminAs(key: string | undefined): Client<typeof KeyAdmin>;
  verify: Client<typeof KeyVerify>;
  stop(): Promise<void>;
}

/** The pepper every test server shares, so that two instances over one database agree on digests. */
export const TEST_PEPPER = "test-pepper-0123456789-0123456789-abcdef";

/** Starts a server over a new database (or `databaseUrl`, to share one between instances). */
export async function startTestServer(
  options: {
    env?: Record<string, string>;
    databaseUrl?: string;
    redis?: boolean;
    /** Turns tracing on, every span going to this exporter. */
    spanExporter?: SpanExporter;
  } = {},
): Promise<TestServer> {
  const db = options.databaseUrl ? undefined : await createTestDatabase(inject("databaseUrl"));
  const databaseUrl = options.databaseUrl ?? db!.url;
  const config = loadConfig({
    DATABASE_URL: databaseUrl,
    KEYMESH_PEPPER: TEST_PEPPER,
    KEYMESH_HTTP_PORT: "0",
    KEYMESH_GRPC_PORT: "0",
    KEYMESH_LAST_USED_FLUSH_MS: "100",
    // Generous deadlines for the tests that count requests against limits: on a busy 2-core CI machine a Check can
    // stall past the defaults (100 ms for Redis, 150 ms for a decision), and a burst's requests are then admitted
    // uncharged with a warning (fail-open) or answered as errors. Deadlines have their own tests (test/ratelimit,
    // test/transport/envoy/check*.int.test.ts), which set them explicitly; `env` overrides these.
    ...(options.redis
      ? { REDIS_URL: inject("redisUrl"), KEYMESH_REDIS_TIMEOUT_MS: "1000", KEYMESH_CHECK_DEADLINE_MS: "2000" }
      : {}),
    ...options.env,
  });
  let rootKey = "";
  const server = await startServer(config, silentLogger, {
    onRootKey: (secret) => {
      rootKey = secret;
    },
    spanExporter: options.spanExporter,
  });
  const httpUrl = `http://127.0.0.1:${server.httpPort}`;
  const adminAs = (key: string | undefined) => {
    const auth: Interceptor = (next) => (req) => {
      if (key !== undefined) req.header.set("authorization", `Bearer ${key}`);
      return next(req);
    };
    return createClient(
      KeyAdmin,
      createConnectTransport({ baseUrl: httpUrl, httpVersion: "1.1", interceptors: [auth] }),
    );
  };
  if (!rootKey) {
    const issued = await server.core.admin.createRootKey(internalActor("test"), "test root", ["admin:root"]);
    rootKey = issued.secret;
  }
  return {
    server,
    rootKey,
    databaseUrl,
    httpUrl,
    grpcAddress: `127.0.0.1:${server.grpcPort}`,
    admin: adminAs(rootKey),
    adminAs,
    // KeyVerify on the grpc-js port, as internal gRPC clients call it; tests build Connect clients on httpUrl.
    verify: createClient(KeyVerify, createGrpcTransport({ baseUrl: `http://127.0.0.1:${server.grpcPort}` })),
    async stop() {
      await server.close();
      await db?.drop();
    },
  };
}
