import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import { createCallDeadline, runWithDeadline } from "../../admin/deadline.js";

/** The timeout the client sent (Connect's header, or gRPC's and gRPC-Web's), in milliseconds. */
function clientTimeoutMs(header: Headers): number | undefined {
  const connect = header.get("connect-timeout-ms");
  if (connect !== null) return parseConnectTimeout(connect, Number.MAX_SAFE_INTEGER).timeoutMs;
  const grpc = header.get("grpc-timeout");
  if (grpc !== null) return parseGrpcTimeout(grpc, Number.MAX_SAFE_INTEGER).timeoutMs;
  return undefined;
}

/**
 * Bounds every call to `serviceName`, authentication included, by the client's timeout capped at `capMs`. When
 * time is up the call answers UNAVAILABLE, and whatever it was writing is not committed, then or later (see
 * src/admin/audit.ts). UNAVAILABLE rather than DEADLINE_EXCEEDED: the change is known not to have been applied,
 * so the caller may safely retry.
 */
export function adminDeadlineInterceptor(serviceName: string, capMs: number): Interceptor {
  return (next) => async (req) => {
    if (req.service.typeName !== serviceName) return next(req);
    const deadline = createCallDeadline(Math.min(capMs, clientTimeoutMs(req.header) ?? capMs), req.signal);
    try {
      return await new Promise((resolve, reject) => {
        const onTimeUp = () =>
          reject(
            new ConnectError(
              "the call did not finish within its deadline; the change was not applied",
              Code.Unavailable,
            ),
          );
        if (deadline.signal.aborted) return onTimeUp();
        deadline.signal.addEventListener("abort", onTimeUp, { once: true });
        runWithDeadline(deadline, () => next(req)).then(resolve, reject);
      });
    } finally {
      deadline.dispose();
    }
  };
}
