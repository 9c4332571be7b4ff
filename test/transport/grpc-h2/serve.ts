/**
 * A gRPC server on node:http2 as keymesh composes it (Check, KeyVerify, health and reflection), over the in-memory
 * fake authorizer, plus test methods that hang or record their deadline. No Postgres, no Redis.
 */
import { file_envoy_service_auth_v3_external_auth } from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { file_grpc_health_v1_health } from "../../../gen/grpc/health/v1/health_pb.js";
import { file_keymesh_v1_verify } from "../../../gen/keymesh/v1/verify_pb.js";
import type { DecisionObserver } from "../../../src/observability/ports.js";
import { createHealthRoutes } from "../../../src/transport/connect/health.js";
import { createReflectionRoutes } from "../../../src/transport/connect/reflection.js";
import { serveCheck, serveVerify } from "../../../src/transport/envoy/hot-path-h2.js";
import { createConnectFallback } from "../../../src/transport/grpc-h2/connect-bridge.js";
import { type GrpcListener, listenGrpcH2 } from "../../../src/transport/grpc-h2/listen.js";
import { createGrpcH2Server, type GrpcH2Limits } from "../../../src/transport/grpc-h2/server.js";
import type { UnaryResult } from "../../../src/transport/grpc-h2/unary-call.js";
import type { HealthSource } from "../../../src/transport/health-source.js";
import { createReflector } from "../../../src/transport/reflection-index.js";
import { verifyWithAuthorizer } from "../../../src/transport/verify-mapping.js";
import { createFakeAuthorizer } from "../fixtures.js";

/** A method that never answers, recording each call's deadline and what its late answer did. */
export const HANG_PATH = "/keymesh.test.Probe/Hang";
/** A method that echoes its request message. */
export const ECHO_PATH = "/keymesh.test.Probe/Echo";

export interface TestServer {
  port: number;
  listener: GrpcListener;
  /** Calls that reached the Hang method: their deadline and a way to answer late. */
  hung: { deadline: number | undefined; done: (result: UnaryResult) => void }[];
  authorizer: ReturnType<typeof createFakeAuthorizer>;
  /** Check answers by decision, counted by the Check service's decision observer. */
  counters: { allow: number; deny: number; error: number };
  close(): Promise<void>;
}

function staticHealth(): HealthSource {
  const known = new Map([
    ["", "SERVING" as const],
    ["envoy.service.auth.v3.Authorization", "SERVING" as const],
  ]);
  return {
    services: () => [...known.keys()].filter((n) => n !== ""),
    status: (service) => known.get(service),
    refresh: async () => {},
    reason: () => "test",
    subscribe: () => () => {},
  };
}

export async function startTestServer(
  limits: Partial<GrpcH2Limits> = {},
  failureMode: "deny" | "error" = "deny",
): Promise<TestServer> {
  const server = createGrpcH2Server(limits);
  const authorizer = createFakeAuthorizer();
  const counters = { allow: 0, deny: 0, error: 0 };
  const observer: DecisionObserver = {
    tracing: false,
    startSpan: () => {
      throw new Error("tracing is off");
    },
    decided: (verdict) => {
      counters[verdict.kind]++;
    },
    unreadable: () => {
      counters.deny++;
    },
    logFields: () => ({}),
  };
  serveCheck(server, {
    authorizer,
    observer,
    decisionOptions: { failureMode, realm: "pods" },
    deadlineMs: 150,
  });
  serveVerify(server, { verify: verifyWithAuthorizer(authorizer), failureMode });
  const hung: TestServer["hung"] = [];
  server.unary(HANG_PATH, (_request, deadline, done) => hung.push({ deadline, done }));
  server.unary(ECHO_PATH, (request, _deadline, done) => done({ kind: "response", bytes: request }));
  server.fallback(
    createConnectFallback(
      (router) => {
        createHealthRoutes(staticHealth())(router);
        createReflectionRoutes(
          createReflector(
            [file_envoy_service_auth_v3_external_auth, file_keymesh_v1_verify, file_grpc_health_v1_health],
            ["envoy.service.auth.v3.Authorization", "keymesh.v1.KeyVerify", "grpc.health.v1.Health"],
          ),
        )(router);
      },
      { readMaxBytes: limits.maxReceiveBytes ?? 4 * 1024 * 1024 },
    ),
  );
  const listener = await listenGrpcH2(server, { host: "127.0.0.1", port: 0 });
  return { port: listener.port, listener, hung, authorizer, counters, close: () => listener.close(200) };
}
