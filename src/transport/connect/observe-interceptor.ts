import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { AdminCallObserver, DecisionObserver } from "../../observability/ports.js";

/** The request id and trace id of the call, for log lines about it. */
export const requestLogFields = createContextKey<Record<string, string>>(
  {},
  { description: "request id and trace id of the call" },
);

/** A status code as metrics name it: `ok`, or the gRPC code in snake case (`permission_denied`). */
export function codeName(code: Code | undefined): string {
  if (code === undefined) return "ok";
  return (Code[code] ?? "unknown").replace(/([a-z])([A-Z])/g, "$1_$2").toLowerCase();
}

/**
 * Observes Connect calls from the outside, before authentication and validation: every KeyAdmin call is counted by
 * method and code and gets a span; a KeyVerify request refused by validation is counted as an unreadable request,
 * as the other decision paths count theirs (its handler counts every request it answers).
 */
export function observeInterceptor(options: {
  adminService: string;
  admin: AdminCallObserver;
  verifyService: string;
  verify: DecisionObserver;
}): Interceptor {
  return (next) => async (req) => {
    const service = req.service.typeName;
    if (service === options.verifyService) {
      const startedAt = performance.now();
      try {
        return await next(req);
      } catch (error) {
        if (ConnectError.from(error).code === Code.InvalidArgument) options.verify.unreadable(startedAt);
        throw error;
      }
    }
    if (service !== options.adminService) return next(req);
    const call = options.admin.start(req.method.name, req.header);
    req.contextValues.set(requestLogFields, call.logFields);
    try {
      const response = await call.run(() => next(req));
      call.finish("ok");
      return response;
    } catch (error) {
      call.finish(codeName(ConnectError.from(error).code));
      throw error;
    }
  };
}
