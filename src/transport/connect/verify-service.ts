import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { KeyVerify } from "../../../gen/keymesh/v1/verify_pb.js";
import type { Authorizer } from "../../domain/check-request.js";
import type { Verdict } from "../../domain/verdict.js";
import type { DecisionObserver, ObservedRequest } from "../../observability/ports.js";
import { verdictToVerifyResponse, verifyRequestToCheck } from "../verify-mapping.js";

/** Registers KeyVerify on a Connect router: the verdict is data; only an opted-in backend failure is an error. */
export function verifyRoutes(
  authorizer: Authorizer,
  failureMode: "deny" | "error",
  observer?: DecisionObserver,
): (router: ConnectRouter) => void {
  return (router) =>
    router.service(KeyVerify, {
      async verify(req, ctx) {
        const startedAt = performance.now();
        // The call's headers carry the caller's trace context and request id; the key is in the message.
        const observed: ObservedRequest = {
          keySpace: req.keySpaceId,
          method: req.method,
          path: req.path,
          headers: ctx.requestHeader,
        };
        const span = observer?.tracing ? observer.startSpan(observed) : undefined;
        let verdict: Verdict = { kind: "error", message: "internal error" };
        try {
          const check = () => authorizer.check(verifyRequestToCheck(req));
          verdict = await (span ? span.run(check) : check());
        } finally {
          observer?.decided(verdict, observed, startedAt, span);
        }
        if (verdict.kind === "error" && failureMode === "error") {
          throw new ConnectError("verification is unavailable", Code.Unavailable);
        }
        return verdictToVerifyResponse(verdict);
      },
    });
}
