import { UNAVAILABLE_MESSAGE } from "../decision.js";
import { Status } from "../grpc-h2/protocol.js";
import type { GrpcH2Server } from "../grpc-h2/server.js";
import { CHECK_METHOD_PATH, type CheckServiceOptions, createCheckHandler } from "./check-service.js";
import { createVerifyHandler, VERIFY_METHOD_PATH, type VerifyServiceOptions } from "./verify-grpc.js";

/** Serves `envoy.service.auth.v3.Authorization/Check` on the node:http2 gRPC server: bytes in, outcome out. */
export function serveCheck(server: GrpcH2Server, options: CheckServiceOptions): void {
  server.unary(CHECK_METHOD_PATH, createCheckHandler(options));
}

/** Serves `keymesh.v1.KeyVerify/Verify` on the node:http2 gRPC server. */
export function serveVerify(server: GrpcH2Server, options: VerifyServiceOptions): void {
  const handle = createVerifyHandler(options);
  server.unary(VERIFY_METHOD_PATH, (request, deadline, done, headers) => {
    // Metadata carries the caller's traceparent and x-request-id, which the decision's span and logs join.
    const metadata = {
      get: (name: string) => {
        const value = headers[name];
        return typeof value === "string" ? value : value?.[0];
      },
    };
    handle(request, deadline, metadata).then(
      (r) =>
        done(
          r.ok ? { kind: "response", bytes: r.bytes } : { kind: "error", code: r.code, details: r.details },
        ),
      () => done({ kind: "error", code: Status.UNAVAILABLE, details: UNAVAILABLE_MESSAGE }),
    );
  });
}
