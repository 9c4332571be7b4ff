import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { file_envoy_service_auth_v3_external_auth } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { file_grpc_health_v1_health } from "../gen/grpc/health/v1/health_pb.js";
import { file_keymesh_v1_admin, KeyAdmin } from "../gen/keymesh/v1/admin_pb.js";
import { file_keymesh_v1_verify } from "../gen/keymesh/v1/verify_pb.js";
import type { Config } from "./config.js";
import type { Core } from "./core.js";
import { HEALTH_SERVICES } from "./health.js";
import type { Logger } from "./log.js";
import { serveMetrics } from "./observability/serve-metrics.js";
import { adminDeadlineInterceptor } from "./transport/connect/admin-deadline.js";
import { createAdminGate } from "./transport/connect/admin-gate.js";
import { adminRoutes } from "./transport/connect/admin-service.js";
import { createHealthRoutes } from "./transport/connect/health.js";
import { inputRulesInterceptor } from "./transport/connect/input-rules.js";
import { adminAuthInterceptor, validationInterceptor } from "./transport/connect/interceptors.js";
import { observeInterceptor } from "./transport/connect/observe-interceptor.js";
import { parseFailuresAsInvalid } from "./transport/connect/parse-errors.js";
import { createReflectionRoutes } from "./transport/connect/reflection.js";
import { verifyRoutes } from "./transport/connect/verify-service.js";
import { createConsoleHandler } from "./transport/console/serve-console.js";
import type { DecisionOptions } from "./transport/decision.js";
import { serveCheck, serveVerify } from "./transport/envoy/hot-path-h2.js";
import { createConnectFallback } from "./transport/grpc-h2/connect-bridge.js";
import { createGrpcH2Server, type GrpcH2Server } from "./transport/grpc-h2/server.js";
import { type HealthSource, scopeHealth } from "./transport/health-source.js";
import { createHttpAuthzHandler } from "./transport/http/authz-handler.js";
import { createProbeHandler } from "./transport/http/probes.js";
import { createReflector } from "./transport/reflection-index.js";
import { verifyWithAuthorizer } from "./transport/verify-mapping.js";

/** The served surface of keymesh, built without listening. */
export interface App {
  /** Connect, gRPC and gRPC-Web for KeyAdmin, KeyVerify, reflection and health; HTTP ext_authz under /authz. */
  httpHandler: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;
  /** node:http2: Envoy Check and KeyVerify, the hot path, with gRPC health and reflection. */
  grpcServer: GrpcH2Server;
}

// What reflection lists on each port besides the port's own services (grpcurl lists these for grpc-go servers too).
const PROTOCOL_SERVICES = [
  "grpc.health.v1.Health",
  "grpc.reflection.v1.ServerReflection",
  "grpc.reflection.v1alpha.ServerReflection",
];

/** Routes a Connect router serves. */
function routes(core: Core, config: Config, logger: Logger, health: HealthSource) {
  const served = [HEALTH_SERVICES.admin, HEALTH_SERVICES.verify];
  return (router: ConnectRouter) => {
    adminRoutes({ admin: core.admin, approvals: core.approvals }, logger)(router);
    verifyRoutes(core.authorizer, config.failureMode, core.observability.decisions("verify_connect"))(router);
    createReflectionRoutes(
      createReflector(
        [file_keymesh_v1_admin, file_keymesh_v1_verify, file_grpc_health_v1_health],
        [...served, ...PROTOCOL_SERVICES],
      ),
    )(router);
    createHealthRoutes(scopeHealth(health, served))(router);
    router.handlers.splice(0, router.handlers.length, ...router.handlers.map(parseFailuresAsInvalid));
  };
}

/**
 * Builds every server of keymesh over `core`, reporting `health` on both ports; nothing listens until the composition
 * root binds them.
 */
export function createApp({
  core,
  config,
  logger,
  health,
}: {
  core: Core;
  config: Config;
  logger: Logger;
  health: HealthSource;
}): App {
  const decisionOptions: Partial<DecisionOptions> = {
    identityHeaderPrefix: config.identityHeaderPrefix,
    failureMode: config.failureMode,
  };
  const { observability } = core;
  const authz = createHttpAuthzHandler({
    authorizer: core.authorizer,
    decisionOptions,
    pathPrefix: "/authz",
    deadlineMs: config.checkDeadlineMs,
    maxBodyBytes: config.authzMaxBodyBytes,
    logger,
    observer: observability.decisions("http_authz"),
  });
  const probes = createProbeHandler(health);
  const webConsole = createConsoleHandler();
  // KeyAdmin calls are authenticated from their headers before any of their body is read.
  const adminGate = createAdminGate(core.adminAuthorizer, KeyAdmin, observability.admin);
  const connect = connectNodeAdapter({
    routes: routes(core, config, logger, health),
    // Bounds every message both as sent and after decompression (connect-node passes it to zlib as maxOutputLength).
    readMaxBytes: config.httpReadMaxBytes,
    contextValues: (req) => adminGate.contextValues(req),
    // An unknown JSON field is refused, not ignored: a misspelt field in a security setting must not pass unseen.
    jsonOptions: { ignoreUnknownFields: false },
    interceptors: [
      // First, so that it sees calls refused by the deadline, authentication and validation too.
      observeInterceptor({
        adminService: "keymesh.v1.KeyAdmin",
        admin: observability.admin,
        verifyService: "keymesh.v1.KeyVerify",
        verify: observability.decisions("verify_connect"),
      }),
      adminDeadlineInterceptor("keymesh.v1.KeyAdmin", config.adminDeadlineMs),
      adminAuthInterceptor(core.adminAuthorizer, "keymesh.v1.KeyAdmin"),
      inputRulesInterceptor("keymesh.v1.KeyAdmin"),
      validationInterceptor(),
    ],
    fallback: (req, res) => {
      if (probes(req, res)) return;
      const url = req.url ?? "";
      if (url === "/metrics") {
        serveMetrics(observability.metrics, res);
        return;
      }
      if (url === "/authz" || url.startsWith("/authz/") || url.startsWith("/authz?")) {
        authz(req as IncomingMessage, res as ServerResponse);
        return;
      }
      if (webConsole(req as IncomingMessage, res as ServerResponse)) return;
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"code":"not_found","message":"no such route"}}');
    },
  });
  // The message limit must fit Envoy's CheckRequest with its body (with_request_body) and headers; it applies to
  // compressed and decompressed size alike.
  const grpcServer = createGrpcH2Server({
    maxReceiveBytes: config.grpcMaxReceiveBytes,
    maxMetadataBytes: config.grpcMaxMetadataBytes,
    maxConcurrentStreams: config.grpcMaxConcurrentStreams,
    idleTimeoutMs: config.grpcIdleTimeoutMs,
    keepaliveTimeMs: config.grpcKeepaliveTimeMs,
    keepaliveTimeoutMs: config.grpcKeepaliveTimeoutMs,
  });
  serveCheck(grpcServer, {
    authorizer: core.authorizer,
    observer: observability.decisions("envoy_grpc"),
    decisionOptions,
    logger,
    deadlineMs: config.checkDeadlineMs,
  });
  serveVerify(grpcServer, {
    verify: verifyWithAuthorizer(core.authorizer),
    failureMode: config.failureMode,
    deadlineMs: config.checkDeadlineMs,
    logger,
    observer: observability.decisions("verify_grpc"),
  });
  // Health (with its streaming Watch) and reflection are not the hot path: the HTTP port's Connect implementations
  // serve them here too, scoped to this port's services.
  const grpcServed = [HEALTH_SERVICES.authorization, HEALTH_SERVICES.verify];
  grpcServer.fallback(
    createConnectFallback(
      (router) => {
        createHealthRoutes(scopeHealth(health, grpcServed))(router);
        createReflectionRoutes(
          createReflector(
            [file_envoy_service_auth_v3_external_auth, file_keymesh_v1_verify, file_grpc_health_v1_health],
            [...grpcServed, ...PROTOCOL_SERVICES],
          ),
        )(router);
      },
      { readMaxBytes: config.grpcMaxReceiveBytes },
    ),
  );
  return { httpHandler: adminGate.wrap(connect), grpcServer };
}
