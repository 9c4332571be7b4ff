import http2 from "node:http2";
import type { StreamFallback } from "./connect-bridge.js";
import { isGrpcContentType, parseEncoding, parseTimeout, Status } from "./protocol.js";
import { respondStatus } from "./respond.js";
import { guardSession, type SessionTiming } from "./session-guard.js";
import { serveUnary, type UnaryMethod } from "./unary-call.js";

/**
 * A small gRPC server for unary methods on node:http2, without grpc-js's per-call machinery: the request headers
 * are checked as the protocol asks, the one message read, the method called and its answer written.
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md
 */

/** Limits and timing of a gRPC server. */
export interface GrpcH2Limits extends SessionTiming {
  /** Largest request message, compressed and after decompression. */
  maxReceiveBytes: number;
  /** Largest request header list (SETTINGS_MAX_HEADER_LIST_SIZE); a larger one is reset with ENHANCE_YOUR_CALM. */
  maxMetadataBytes: number;
  /** SETTINGS_MAX_CONCURRENT_STREAMS: calls one connection may have open at once. */
  maxConcurrentStreams: number;
}

/** The defaults: grpc-js's and grpc-go's message limit, 16 KiB of metadata, gRPC's keepalive guidance. */
export const DEFAULT_GRPC_H2_LIMITS: GrpcH2Limits = {
  maxReceiveBytes: 4 * 1024 * 1024,
  maxMetadataBytes: 16 * 1024,
  maxConcurrentStreams: 1000,
  idleTimeoutMs: 300_000,
  keepaliveTimeMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  closeGraceMs: 2000,
};

/** A gRPC server not yet listening; see listenGrpcH2. */
export interface GrpcH2Server {
  /** Serves `method` at its full path, `/package.Service/Method`. */
  unary(path: string, method: UnaryMethod): void;
  /** Hands the streams of paths that `fallback` serves to it (streaming and protocol services). */
  fallback(fallback: StreamFallback): void;
  readonly limits: GrpcH2Limits;
  /** The node:http2 server, sessions guarded; listenGrpcH2 binds it. */
  readonly http2: http2.Http2Server;
}

/** Creates the server; every stream is answered, and no stream or session error reaches the process. */
export function createGrpcH2Server(limits: Partial<GrpcH2Limits> = {}): GrpcH2Server {
  const resolved: GrpcH2Limits = { ...DEFAULT_GRPC_H2_LIMITS, ...limits };
  const methods = new Map<string, UnaryMethod>();
  let fallback: StreamFallback | undefined;
  const server = http2.createServer({
    settings: {
      maxHeaderListSize: resolved.maxMetadataBytes,
      maxConcurrentStreams: resolved.maxConcurrentStreams,
    },
    // Header pairs are bounded by the header list size; node's default of 128 pairs would refuse large metadata
    // that fits the byte limit.
    maxHeaderListPairs: Math.max(128, Math.ceil(resolved.maxMetadataBytes / 32)),
  });
  server.on("session", (session: http2.ServerHttp2Session) => {
    // A broken peer (bad frames, a reset socket) ends its own session, never the process.
    session.on("error", ignore);
    guardSession(session, resolved);
  });
  server.on("sessionError", ignore);

  server.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => {
    stream.on("error", ignore);
    try {
      route(stream, headers);
    } catch {
      if (!stream.destroyed && !stream.headersSent) respondStatus(stream, Status.INTERNAL, "internal error");
    }
  });

  function route(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void {
    // Not gRPC at all: answered in HTTP terms first, as the spec asks, with a gRPC status for gRPC clients.
    if (headers[":method"] !== "POST") {
      respondStatus(stream, Status.INTERNAL, `method ${headers[":method"]} is not POST`, 405);
      return;
    }
    const contentType = headers["content-type"];
    if (!isGrpcContentType(contentType)) {
      respondStatus(stream, Status.INVALID_ARGUMENT, `invalid gRPC content-type "${contentType ?? ""}"`, 415);
      return;
    }
    // `te: trailers` is how gRPC detects a proxy that would drop the trailers carrying the status.
    if (headers.te !== "trailers") {
      respondStatus(stream, Status.INTERNAL, 'the "te: trailers" header is required');
      return;
    }
    const path = headers[":path"] ?? "";
    const method = methods.get(path);
    if (method === undefined && !fallback?.serves(path)) {
      respondStatus(stream, Status.UNIMPLEMENTED, `unknown method ${path}`);
      return;
    }
    const timeoutMs = parseTimeout(headers["grpc-timeout"]);
    if (Number.isNaN(timeoutMs)) {
      respondStatus(stream, Status.INTERNAL, `malformed grpc-timeout "${headers["grpc-timeout"]}"`);
      return;
    }
    if (method === undefined) {
      fallback?.handle(stream, headers, timeoutMs);
      return;
    }
    const encoding = parseEncoding(headers["grpc-encoding"]);
    if (encoding === undefined) {
      respondStatus(
        stream,
        Status.UNIMPLEMENTED,
        `grpc-encoding "${headers["grpc-encoding"]}" is not supported`,
      );
      return;
    }
    serveUnary(stream, { method, encoding, headers, timeoutMs, maxReceiveBytes: resolved.maxReceiveBytes });
  }

  return {
    unary(path, method) {
      methods.set(path, method);
    },
    fallback(value) {
      fallback = value;
    },
    limits: resolved,
    http2: server,
  };
}

function ignore(): void {}
