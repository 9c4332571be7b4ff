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
import { adminRoutes } from "./transport/connect/admin-service.js";
import { createHealthRoutes } from "./transport/connect/health.js";
import { inputRulesInterceptor } from "./transport/connect/input-rules.js";
import { adminAuthInterceptor, validationInterceptor } from "./transport/connect/interceptors.js";
import { parseFailuresAsInvalid } from "./transport/connect/parse-errors.js";
import { createReflectionRoutes } from "./transport/connect/reflection.js";
import { verifyRoutes } from "./transport/connect/verify-service.js";
import type { DecisionOptions } from "./transport/decision.js";
import { addCheckService, createCheckCounters } from "./transport/envoy/check-service.js";
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
    adminRoutes(
      { admin: core.admin, approvals: core.approvals, signingSecret: core.signingSecret },
      logger,
    )(router);
    verifyRoutes(core.authorizer, config.failureMode)(router);
    createReflectionRoutes(
      [file_keymesh_v1_admin, file_keymesh_v1_verify],
      ["keymesh.v1.KeyAdmin", "keymesh.v1.KeyVerify"],
    )(router);
    createHealthRoutes(() => (core.healthy() ? "SERVING" : "NOT_SERVING"), {
      services: ["keymesh.v1.KeyAdmin", "keymesh.v1.KeyVerify"],
    })(router);
    router.handlers.splice(0, router.handlers.length, ...router.handlers.map(parseFailuresAsInvalid));
  };
}

/** Builds every server of keymesh over `core`; nothing listens until the composition root binds them. */
export function createApp({ core, config, logger }: { core: Core; config: Config; logger: Logger }): App {
  const decisionOptions: Partial<DecisionOptions> = {
    identityHeaderPrefix: config.identityHeaderPrefix,
    failureMode: config.failureMode,
  };
  // Shared by the gRPC Check service, which counts, and /metrics, which reads.
  const checkCounters = createCheckCounters();
  const authz = createHttpAuthzHandler({
    authorizer: core.authorizer,
    decisionOptions,
    pathPrefix: "/authz",
    deadlineMs: config.checkDeadlineMs,
    logger,
  });
  const connect = connectNodeAdapter({
    routes: routes(core, config, logger),
    // An unknown JSON field is refused, not ignored: a misspelt field in a security setting must not pass unseen.
    jsonOptions: { ignoreUnknownFields: false },
    interceptors: [
      adminAuthInterceptor(core.adminAuthorizer, "keymesh.v1.KeyAdmin"),
      inputRulesInterceptor("keymesh.v1.KeyAdmin"),
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
        const m = core.metrics();
        const decisions = (["allow", "deny", "error"] as const).map(
          (d) => `keymesh_check_decisions_total{decision="${d}"} ${checkCounters[d]}`,
        );
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(
          [
            "# HELP keymesh_check_decisions_total Envoy Check calls over gRPC, by the verdict reached; error means no decision (deadline, backend or internal failure), answered per the failure mode.",
            "# TYPE keymesh_check_decisions_total counter",
            ...decisions,
            "# HELP keymesh_rate_limiter_failures_total Checks whose rate limiter call failed (then handled by the failure policy).",
            "# TYPE keymesh_rate_limiter_failures_total counter",
            `keymesh_rate_limiter_failures_total ${m.limiterFailures}`,
            "# HELP keymesh_cached_keys Keys in the in-process cache.",
            "# TYPE keymesh_cached_keys gauge",
            `keymesh_cached_keys ${m.cachedKeys}`,
            "# HELP keymesh_database_up Whether the last database probe succeeded.",
            "# TYPE keymesh_database_up gauge",
            `keymesh_database_up ${m.databaseUp ? 1 : 0}`,
            "",
          ].join("\n"),
        );
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
    counters: checkCounters,
    decisionOptions,
    logger,
    deadlineMs: config.checkDeadlineMs,
  });
  addVerifyService(grpcServer, {
    verify: verifyWithAuthorizer(core.authorizer),
    failureMode: config.failureMode,
    deadlineMs: config.checkDeadlineMs,
    logger,
  });
  return { httpHandler: connect, grpcServer };
}
