import type { IncomingMessage, ServerResponse } from "node:http";
import type { Http2ServerRequest, Http2ServerResponse } from "node:http2";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { file_keymesh_v1_admin } from "../gen/keymesh/v1/admin_pb.js";
import { file_keymesh_v1_verify } from "../gen/keymesh/v1/verify_pb.js";
import type { Config } from "./config.js";
import type { Core } from "./core.js";
import type { Logger } from "./log.js";
import { serveMetrics } from "./observability/serve-metrics.js";
import { adminDeadlineInterceptor } from "./transport/connect/admin-deadline.js";
import { adminRoutes } from "./transport/connect/admin-service.js";
import { createHealthRoutes } from "./transport/connect/health.js";
import { adminAuthInterceptor, validationInterceptor } from "./transport/connect/interceptors.js";
import { observeInterceptor } from "./transport/connect/observe-interceptor.js";
import { createReflectionRoutes } from "./transport/connect/reflection.js";
import { verifyRoutes } from "./transport/connect/verify-service.js";
import type { DecisionOptions } from "./transport/decision.js";
import { addCheckService } from "./transport/envoy/check-service.js";
import { addVerifyService } from "./transport/envoy/verify-grpc.js";
import { createHttpAuthzHandler } from "./transport/http/authz-handler.js";
import { verifyWithAuthorizer } from "./transport/verify-mapping.js";

/** The served surface of keymesh, built without listening. */
export interface App {
  /** Connect, gRPC and gRPC-Web for KeyAdmin, KeyVerify, reflection and health; HTTP ext_authz under /authz. */
  httpHandler: (req: IncomingMessage | Http2ServerRequest, res: ServerResponse | Http2ServerResponse) => void;
  /** grpc-js: Envoy Check and KeyVerify, the hot path. */
  grpcServer: grpc.Server;
}

/** Routes a Connect router serves. */
function routes(core: Core, config: Config, logger: Logger) {
  return (router: ConnectRouter) => {
    adminRoutes({ admin: core.admin, approvals: core.approvals }, logger)(router);
    verifyRoutes(core.authorizer, config.failureMode, core.observability.decisions("verify_connect"))(router);
    createReflectionRoutes(
      [file_keymesh_v1_admin, file_keymesh_v1_verify],
      ["keymesh.v1.KeyAdmin", "keymesh.v1.KeyVerify"],
    )(router);
    createHealthRoutes(() => (core.healthy() ? "SERVING" : "NOT_SERVING"), {
      services: ["keymesh.v1.KeyAdmin", "keymesh.v1.KeyVerify"],
    })(router);
  };
}

/** Builds every server of keymesh over `core`; nothing listens until the composition root binds them. */
export function createApp({ core, config, logger }: { core: Core; config: Config; logger: Logger }): App {
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
    logger,
    observer: observability.decisions("http_authz"),
  });
  const connect = connectNodeAdapter({
    routes: routes(core, config, logger),
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
      validationInterceptor(),
    ],
    fallback: (req, res) => {
      const url = req.url ?? "";
      if (url === "/healthz") {
        const up = core.healthy();
        res.writeHead(up ? 200 : 503, { "content-type": "text/plain" });
        res.end(up ? "ok\n" : "database unreachable\n");
        return;
      }
      if (url === "/metrics") {
        serveMetrics(observability.metrics, res);
        return;
      }
      if (url === "/authz" || url.startsWith("/authz/") || url.startsWith("/authz?")) {
        authz(req as IncomingMessage, res as ServerResponse);
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"code":"not_found","message":"no such route"}}');
    },
  });
  // The hot path keeps grpc-js's own limits but allows messages as large as Envoy may send with bodies.
  // Channelz is off: keymesh serves no channelz service, and its per-call bookkeeping was pure cost.
  const grpcServer = new grpc.Server({
    "grpc.max_receive_message_length": 8 * 1024 * 1024,
    "grpc.enable_channelz": 0,
  });
  addCheckService(grpcServer, {
    authorizer: core.authorizer,
    observer: observability.decisions("envoy_grpc"),
    decisionOptions,
    logger,
    deadlineMs: config.checkDeadlineMs,
  });
  addVerifyService(grpcServer, {
    verify: verifyWithAuthorizer(core.authorizer),
    failureMode: config.failureMode,
    deadlineMs: config.checkDeadlineMs,
    logger,
    observer: observability.decisions("verify_grpc"),
  });
  return { httpHandler: connect, grpcServer };
}
