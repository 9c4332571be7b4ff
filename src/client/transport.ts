import type { Interceptor, Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { type RetryOptions, retryInterceptor } from "./retry.js";

/** Where and how a client reaches keymesh. */
export interface TransportOptions {
  /** `http://host:8080` (Connect, gRPC and gRPC-Web) or `http://host:9090` (gRPC only); https:// for TLS. */
  baseUrl: string;
  /** Wire protocol: Connect (default) or gRPC. Port 9090 speaks gRPC only. */
  protocol?: "connect" | "grpc";
  /** HTTP version for Connect; gRPC always uses HTTP/2. Default "2". */
  httpVersion?: "1.1" | "2";
  /** Deadline of every call unless the call passes its own `timeoutMs`. */
  timeoutMs?: number;
  /** Retries of idempotent calls on UNAVAILABLE; `false` turns them off. */
  retry?: RetryOptions | false;
  /** PEM certificate(s) to trust for https:// in place of the system's CAs (a private CA). */
  ca?: string | Buffer;
  /** Interceptors run before keymesh's own (outermost first). */
  interceptors?: Interceptor[];
}

/** Builds a Connect or gRPC transport with keymesh's retry policy and the given extra interceptors. */
export function createKeymeshTransport(
  options: TransportOptions,
  defaults: { timeoutMs: number },
  own: Interceptor[] = [],
): Transport {
  const interceptors = [
    ...(options.interceptors ?? []),
    ...own,
    ...(options.retry === false ? [] : [retryInterceptor(options.retry)]),
  ];
  const defaultTimeoutMs = options.timeoutMs ?? defaults.timeoutMs;
  const tls = options.ca === undefined ? {} : { nodeOptions: { ca: options.ca } };
  if (options.protocol === "grpc") {
    return createGrpcTransport({ baseUrl: options.baseUrl, interceptors, defaultTimeoutMs, ...tls });
  }
  if (options.httpVersion === "1.1") {
    return createConnectTransport({
      baseUrl: options.baseUrl,
      httpVersion: "1.1",
      interceptors,
      defaultTimeoutMs,
      ...tls,
    });
  }
  return createConnectTransport({
    baseUrl: options.baseUrl,
    httpVersion: "2",
    interceptors,
    defaultTimeoutMs,
    ...tls,
  });
}
