/** What the primary tells a worker over the cluster IPC channel. */
export type ToWorker =
  /** The database the primary prepared; the secrets travel over the IPC pipe, not the environment. */
  | { type: "start"; slot: number; serviceUrl: string; pepper: string }
  /** SIGTERM's graceful stop: NOT_SERVING while still answering for the drain period, then close. */
  | { type: "drain" }
  /** A second signal: close now. */
  | { type: "close" };

/** What a worker tells the primary. */
export type ToPrimary =
  /** Sent once the worker's message handler is in place, so that "start" cannot arrive before it. */
  { type: "hello" } | { type: "listening"; httpPort: number; grpcPort: number };

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

/** Narrows an IPC message to one the primary sends (cluster's own internal messages are not delivered here). */
export function asToWorker(message: unknown): ToWorker | undefined {
  if (!isRecord(message)) return undefined;
  switch (message.type) {
    case "start":
      return typeof message.slot === "number" &&
        typeof message.serviceUrl === "string" &&
        typeof message.pepper === "string"
        ? { type: "start", slot: message.slot, serviceUrl: message.serviceUrl, pepper: message.pepper }
        : undefined;
    case "drain":
    case "close":
      return { type: message.type };
    default:
      return undefined;
  }
}

/** Narrows an IPC message to one a worker sends. */
export function asToPrimary(message: unknown): ToPrimary | undefined {
  if (!isRecord(message)) return undefined;
  if (message.type === "hello") return { type: "hello" };
  if (
    message.type === "listening" &&
    typeof message.httpPort === "number" &&
    typeof message.grpcPort === "number"
  ) {
    return { type: "listening", httpPort: message.httpPort, grpcPort: message.grpcPort };
  }
  return undefined;
}
