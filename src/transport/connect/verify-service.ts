import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { KeyVerify } from "../../../gen/keymesh/v1/verify_pb.js";
import type { Authorizer } from "../../domain/check-request.js";
import { verdictToVerifyResponse, verifyRequestToCheck } from "../verify-mapping.js";

/** Registers KeyVerify on a Connect router: the verdict is data; only an opted-in backend failure is an error. */
export function verifyRoutes(
  authorizer: Authorizer,
  failureMode: "deny" | "error",
): (router: ConnectRouter) => void {
  return (router) =>
    router.service(KeyVerify, {
      async verify(req) {
        const verdict = await authorizer.check(verifyRequestToCheck(req));
        if (verdict.kind === "error" && failureMode === "error") {
          throw new ConnectError("verification is unavailable", Code.Unavailable);
        }
        return verdictToVerifyResponse(verdict);
      },
    });
}
