import { randomUUID } from "node:crypto";
import type { HeaderReader } from "./ports.js";

// A caller's request id is echoed into logs, so it is kept short and printable.
const MAX_REQUEST_ID = 128;
const unprintable = /[^\x21-\x7e]/g;
const traceparent = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}/;

/**
 * The fields that tie a log line to its request: `requestId` (the caller's `x-request-id`, else a new id) and
 * `traceId` (the active span's, else the trace the request's `traceparent` names, when it names one). Computed
 * only when a line is written, so requests that log nothing pay nothing.
 */
export function requestFields(headers: HeaderReader | undefined, traceId?: string): Record<string, string> {
  const given = headers?.get("x-request-id");
  const fields: Record<string, string> = {
    requestId: given ? given.replace(unprintable, "").slice(0, MAX_REQUEST_ID) || randomUUID() : randomUUID(),
  };
  const trace = traceId ?? traceparent.exec(headers?.get("traceparent") ?? "")?.[1];
  if (trace && trace !== "00000000000000000000000000000000") fields.traceId = trace;
  return fields;
}

/** A route for logs: method and path without the query string, which may carry anything. */
export function routeOf(method: string, path: string): string {
  const q = path.indexOf("?");
  return `${method} ${(q < 0 ? path : path.slice(0, q)).slice(0, 256)}`;
}
