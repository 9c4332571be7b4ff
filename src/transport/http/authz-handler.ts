import type { IncomingMessage, ServerResponse } from "node:http";
import type { Authorizer, CheckRequest } from "../../domain/check-request.js";
import type { Verdict } from "../../domain/verdict.js";
import type { Logger } from "../../log.js";
import type { DecisionObserver, DecisionSpan } from "../../observability/ports.js";
import {
  type Decision,
  type DecisionOptions,
  resolveDecisionOptions,
  verdictToDecision,
} from "../decision.js";
import { createFailureLog, DEFAULT_CHECK_DEADLINE_MS, verdictWithin } from "../envoy/guard.js";

/** Settings of the HTTP ext_authz endpoint (Envoy http_service, nginx auth_request, Traefik forwardAuth). */
export interface HttpAuthzOptions {
  authorizer: Authorizer;
  decisionOptions?: Partial<DecisionOptions>;
  /** Where the endpoint is mounted; Envoy's http_service prepends it to the original path (default "/authz"). */
  pathPrefix?: string;
  /** Header naming the key space; the proxy must set it, overwriting any client copy (default "x-keymesh-key-space"). */
  keySpaceHeader?: string;
  /** Header demanding scopes explicitly; the proxy must set it, overwriting any client copy (default "x-keymesh-scope"). */
  scopeHeader?: string;
  /** Header overriding the rate-limit cost (default "x-keymesh-cost"). */
  costHeader?: string;
  /** A decision is sent within this many milliseconds even if the authorizer hangs (default 150). */
  deadlineMs?: number;
  /**
   * Status for approval_required with a pending ticket. 403 by default: nginx auth_request and Traefik forwardAuth
   * treat ANY 2xx as "allow", so the 202 of the decision is only safe behind Envoy's http_service (only 200 allows).
   */
  approvalStatus?: number;
  /**
   * Request bodies (Envoy with_request_body) up to this size are passed to the authorizer; a larger one is refused
   * with 413 as soon as its declared length or its bytes so far exceed it, without reading the rest (default 64 KiB).
   */
  maxBodyBytes?: number;
  logger?: Logger;
  /** Records every answer (metrics, span, decision log). */
  observer?: DecisionObserver;
}

/** Creates the Node request listener answering 200 with identity headers, or the denial with its JSON body; never throws. */
export function createHttpAuthzHandler(
  options: HttpAuthzOptions,
): (req: IncomingMessage, res: ServerResponse) => void {
  const decisionOptions = resolveDecisionOptions(options.decisionOptions);
  const prefix = (options.pathPrefix ?? "/authz").replace(/\/+$/, "");
  const names = {
    keySpace: (options.keySpaceHeader ?? "x-keymesh-key-space").toLowerCase(),
    scope: (options.scopeHeader ?? "x-keymesh-scope").toLowerCase(),
    cost: (options.costHeader ?? "x-keymesh-cost").toLowerCase(),
  };
  const deadlineMs = options.deadlineMs ?? DEFAULT_CHECK_DEADLINE_MS;
  const approvalStatus = options.approvalStatus ?? 403;
  const maxBodyBytes = options.maxBodyBytes ?? 64 * 1024;
  const logFailure = createFailureLog(options.logger, "http authz check failed");
  const observer = options.observer;

  const answer = async (
    req: IncomingMessage,
    res: ServerResponse,
    body: Buffer | undefined,
    startedAt: number,
  ) => {
    let decision: Decision;
    let request: CheckRequest | Error | undefined;
    let span: DecisionSpan | undefined;
    try {
      request = toCheckRequest(req, prefix, names, body);
      if (request instanceof Error) {
        observer?.unreadable(startedAt);
        sendBadRequest(res, request.message);
        return;
      }
      const checked = request;
      span = observer?.tracing ? observer.startSpan(checked) : undefined;
      const produce = () => options.authorizer.check(checked);
      const verdict = await verdictWithin(
        span ? () => span!.run(produce) : produce,
        deadlineMs,
        options.authorizer.deadlineMs,
      );
      if (verdict.kind === "error") logFailure(verdict.message, () => observer?.logFields(checked, span));
      decision = verdictToDecision(verdict, decisionOptions);
      observer?.decided(verdict, checked, startedAt, span);
    } catch (error) {
      const known = request instanceof Error ? undefined : request;
      logFailure(error instanceof Error ? error.message : String(error), () =>
        observer?.logFields(known, span),
      );
      const verdict: Verdict = { kind: "error", message: "internal error" };
      decision = verdictToDecision(verdict, decisionOptions);
      if (known) observer?.decided(verdict, known, startedAt, span);
      else observer?.unreadable(startedAt, span);
    }
    send(req, res, decision, approvalStatus);
  };

  return (req, res) => {
    // A client that goes away mid-request needs no answer; without a listener the error would crash the process.
    req.on("error", () => {});
    const startedAt = performance.now();
    const declared = Number(req.headers["content-length"] ?? 0);
    if (declared > maxBodyBytes) {
      sendTooLarge(res, maxBodyBytes);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= maxBodyBytes) {
        chunks.push(chunk);
        return;
      }
      // Refused while still arriving: the rest is dropped unkept, and listenHttp ends the upload after the answer.
      req.off("data", onData);
      req.off("end", onEnd);
      req.resume();
      sendTooLarge(res, maxBodyBytes);
    };
    const onEnd = () => {
      const body = size > 0 ? Buffer.concat(chunks, size) : undefined;
      answer(req, res, body, startedAt).catch(() => {
        // send() guards every write; reaching here means the socket is gone and there is no one to answer.
      });
    };
    req.on("data", onData);
    req.on("end", onEnd);
  };
}

function sendTooLarge(res: ServerResponse, maxBodyBytes: number): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({
    error: { code: "payload_too_large", message: `the request body exceeds ${maxBodyBytes} bytes` },
  });
  res.writeHead(413, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function send(req: IncomingMessage, res: ServerResponse, d: Decision, approvalStatus: number): void {
  if (res.headersSent || res.destroyed) return;
  try {
    // A 5xx is what Envoy's http_service reads as "error" (its failure_mode_allow applies), matching failureMode "error".
    res.statusCode = d.httpStatus === 202 ? approvalStatus : d.httpStatus;
    for (const [name, value] of d.upstreamHeaders) res.setHeader(name, value);
    for (const [name, value] of d.responseHeaders) res.setHeader(name, value);
    // Envoy's http_service convention for headers_to_remove.
    if (d.removeHeaders.length > 0)
      res.setHeader("x-envoy-auth-headers-to-remove", d.removeHeaders.join(", "));
    const body = d.allowed ? "" : d.body;
    res.setHeader("content-length", Buffer.byteLength(body));
    res.end(req.method === "HEAD" ? undefined : body);
  } catch {
    // A header Node refuses must not leave the proxy waiting for a response that never comes.
    if (!res.headersSent) {
      res.writeHead(503, { "content-type": "application/json" });
      res.end('{"error":{"code":"unavailable","message":"internal error"}}');
    } else res.destroy();
  }
}

function sendBadRequest(res: ServerResponse, message: string): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ error: { code: "bad_request", message } });
  res.writeHead(400, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
  res.end(body);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** The one value of a header pair, or an error when a client added the other header with a different value. */
function pair(req: IncomingMessage, a: string, b: string): string | undefined | Error {
  const first = header(req, a);
  const second = header(req, b);
  // Each proxy overwrites the pair it sets (nginx X-Original-*, Traefik X-Forwarded-*); a disagreeing twin is forged.
  if (first !== undefined && second !== undefined && first !== second)
    return new Error(`${a} and ${b} disagree`);
  return first ?? second;
}

/** Reads the original request from the proxy's auth request, or says why it cannot be trusted. */
function toCheckRequest(
  req: IncomingMessage,
  prefix: string,
  names: { keySpace: string; scope: string; cost: string },
  body: Buffer | undefined,
): CheckRequest | Error {
  const url = req.url ?? "/";
  const q = url.indexOf("?");
  const pathPart = q < 0 ? url : url.slice(0, q);
  const headers = new Map<string, string>();
  for (const [name, value] of Object.entries(req.headers)) {
    if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  let request: CheckRequest;
  if (prefix !== "" && pathPart === prefix) {
    // The bare endpoint (nginx auth_request, Traefik forwardAuth): the auth subrequest carries every client header,
    // so policy comes only from the operator's query string, and the original request line from the proxy's headers.
    const params = new URLSearchParams(q >= 0 ? url.slice(q + 1) : "");
    const method = pair(req, "x-original-method", "x-forwarded-method");
    const path = pair(req, "x-original-uri", "x-forwarded-uri");
    if (method instanceof Error) return method;
    if (path instanceof Error) return path;
    const cost = (params.get("cost") ?? "").trim();
    request = {
      keySpace: (params.get("key_space") ?? "").trim(),
      scopes: (params.get("scope") ?? "").split(/[\s,]+/).filter((x) => x.length > 0),
      method: (method ?? req.method ?? "GET").toUpperCase(),
      path: path ?? "/",
      headers,
      cost: /^\d{1,9}$/.test(cost) ? Number(cost) : 0,
    };
  } else {
    // Under the prefix (Envoy http_service): the auth request repeats the client's method and path, and Envoy
    // forwards only the headers its allowed_headers name, so the operator's headers_to_add carry the policy.
    const cost = (header(req, names.cost) ?? "").trim();
    request = {
      keySpace: (header(req, names.keySpace) ?? "").trim(),
      scopes: (header(req, names.scope) ?? "").split(/[\s,]+/).filter((x) => x.length > 0),
      method: (req.method ?? "GET").toUpperCase(),
      path: prefix === "" || pathPart.startsWith(`${prefix}/`) ? url.slice(prefix.length) || "/" : url,
      headers,
      cost: /^\d{1,9}$/.test(cost) ? Number(cost) : 0,
    };
  }
  if (body) request.body = body;
  return request;
}
