import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import {
  Health,
  HealthCheckResponse_ServingStatus as Status,
} from "../../../gen/grpc/health/v1/health_pb.js";

/** What the process reports for itself (service name "") and for every listed service. */
export type HealthStatus = "SERVING" | "NOT_SERVING";

/** Options for `createHealthRoutes`. */
export interface HealthRoutesOptions {
  /** Fully-qualified service names that report the same status as the server (besides ""). */
  services?: string[];
  /** How often Watch re-reads the status to notice a change (default 1000 ms). */
  watchIntervalMs?: number;
}

const toStatus = (status: HealthStatus) => (status === "SERVING" ? Status.SERVING : Status.NOT_SERVING);

/**
 * Routes for the standard `grpc.health.v1.Health` service (Check, List, Watch), answering from `status()` for
 * the server as a whole ("") and for `options.services`; other names are unknown.
 */
export function createHealthRoutes(
  status: () => HealthStatus,
  options: HealthRoutesOptions = {},
): (router: ConnectRouter) => void {
  const known = new Set(["", ...(options.services ?? [])]);
  const interval = options.watchIntervalMs ?? 1000;
  return (router) => {
    router.service(Health, {
      check(request) {
        if (!known.has(request.service))
          throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
        return { status: toStatus(status()) };
      },
      list() {
        const current = toStatus(status());
        return { statuses: Object.fromEntries([...known].map((name) => [name, { status: current }])) };
      },
      async *watch(request, context) {
        // Per the health protocol, Watch reports SERVICE_UNKNOWN instead of failing, since the service may appear.
        const read = () => (known.has(request.service) ? toStatus(status()) : Status.SERVICE_UNKNOWN);
        let last = read();
        yield { status: last };
        // Polling keeps the health source a plain function; the stream ends when the client goes away.
        while (!context.signal.aborted) {
          try {
            await sleep(interval, undefined, { signal: context.signal });
          } catch {
            return;
          }
          const next = read();
          if (next !== last) {
            last = next;
            yield { status: next };
          }
        }
      },
    });
  };
}
