import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { Health } from "../../../gen/grpc/health/v1/health_pb.js";
import { HEALTH_STATUS, type HealthSource, type WatchedStatus, watchHealth } from "../health-source.js";

/**
 * Routes for the standard `grpc.health.v1.Health` service (Check, List, Watch) answering from `source`: Check and
 * List re-evaluate first, Watch streams each change until the client leaves or the source ends.
 */
export function createHealthRoutes(source: HealthSource): (router: ConnectRouter) => void {
  return (router) => {
    router.service(Health, {
      async check(request) {
        await source.refresh();
        const status = source.status(request.service);
        if (status === undefined) throw new ConnectError(`unknown service ${request.service}`, Code.NotFound);
        return { status: HEALTH_STATUS[status] };
      },
      async list() {
        await source.refresh();
        const names = ["", ...source.services()];
        return {
          statuses: Object.fromEntries(
            names.map((name) => [name, { status: HEALTH_STATUS[source.status(name) ?? "SERVICE_UNKNOWN"] }]),
          ),
        };
      },
      async *watch(request, context) {
        // Callbacks from watchHealth, queued for this generator; Watch reports SERVICE_UNKNOWN instead of failing.
        const queue: WatchedStatus[] = [];
        let done = false;
        let wake: (() => void) | undefined;
        const nudge = () => {
          wake?.();
          wake = undefined;
        };
        const cancel = watchHealth(
          source,
          request.service,
          (status) => {
            queue.push(status);
            nudge();
          },
          () => {
            done = true;
            nudge();
          },
        );
        context.signal.addEventListener("abort", nudge);
        try {
          while (!context.signal.aborted) {
            const next = queue.shift();
            if (next !== undefined) {
              yield { status: HEALTH_STATUS[next] };
              continue;
            }
            if (done) return;
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
          }
        } finally {
          cancel();
          context.signal.removeEventListener("abort", nudge);
        }
      },
    });
  };
}
