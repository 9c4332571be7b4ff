import { HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";

/** What a health service reports for a service name it knows. */
export type ServingStatus = "SERVING" | "NOT_SERVING";

/**
 * What the `grpc.health.v1.Health` services (on both ports) and the HTTP probes answer from. The composition root
 * implements it; transport only translates it into the health protocol and status codes.
 */
export interface HealthSource {
  /** The service names it reports on, besides "" (the server as a whole). */
  services(): readonly string[];
  /** The status of `service` ("" for the server as a whole) as last evaluated; undefined when the name is unknown. */
  status(service: string): ServingStatus | undefined;
  /** Re-evaluates when the last evaluation is older than a moment, so that a Check answers with the state now. */
  refresh(): Promise<void>;
  /** Why the server as a whole is or is not serving, in a few words, for `/readyz`'s body. */
  reason(): string;
  /**
   * Calls `listener` after any status may have changed, with `ended` true once the server stops serving health
   * (Watch streams then finish), at once for a listener that subscribes after the end; returns the function that
   * unsubscribes.
   */
  subscribe(listener: (ended: boolean) => void): () => void;
}

/**
 * The view of `source` one port serves: the overall status ("") and the named services that port implements; other
 * names are unknown there, as a client asking that port about a service it does not serve should learn.
 */
export function scopeHealth(source: HealthSource, services: readonly string[]): HealthSource {
  const known = new Set(["", ...services]);
  return {
    services: () => source.services().filter((name) => known.has(name)),
    status: (service) => (known.has(service) ? source.status(service) : undefined),
    refresh: () => source.refresh(),
    reason: () => source.reason(),
    subscribe: (listener) => source.subscribe(listener),
  };
}

/** What Watch reports: a service's status, or SERVICE_UNKNOWN for a name the source does not know (yet). */
export type WatchedStatus = ServingStatus | "SERVICE_UNKNOWN";

/**
 * The Watch protocol over `source`, shared by both ports: sends `service`'s status once it has been evaluated now,
 * then each change, and calls `onEnd` once the source ends. Returns the function that stops watching.
 */
export function watchHealth(
  source: HealthSource,
  service: string,
  onStatus: (status: WatchedStatus) => void,
  onEnd: () => void,
): () => void {
  let stopped = false;
  let ended = false;
  let last: WatchedStatus | undefined;
  const send = () => {
    const next = source.status(service) ?? "SERVICE_UNKNOWN";
    if (next === last) return;
    last = next;
    onStatus(next);
  };
  const cancel = () => {
    if (stopped) return;
    stopped = true;
    unsubscribe();
  };
  const update = () => {
    if (stopped) return;
    send();
    if (!ended) return;
    cancel();
    onEnd();
  };
  const unsubscribe = source.subscribe((end) => {
    ended ||= end;
    // Until the first status is out, the first send reports whatever changed meanwhile.
    if (last !== undefined) update();
  });
  source.refresh().then(update, update);
  return cancel;
}

/** The grpc.health.v1 wire status of each status a source reports, for both ports' Health services. */
export const HEALTH_STATUS: Readonly<Record<WatchedStatus, Status>> = {
  SERVING: Status.SERVING,
  NOT_SERVING: Status.NOT_SERVING,
  SERVICE_UNKNOWN: Status.SERVICE_UNKNOWN,
};
