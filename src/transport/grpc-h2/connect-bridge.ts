import type http2 from "node:http2";
import { ConnectError, type ConnectRouter, createConnectRouter } from "@connectrpc/connect";
import type {
  UniversalHandler,
  UniversalServerRequest,
  UniversalServerResponse,
} from "@connectrpc/connect/protocol";
import { encodeGrpcMessage, MAX_TIMER_MS, Status } from "./protocol.js";
import { canRespond, respondStatus } from "./respond.js";

/** Serves some paths' streams on behalf of the gRPC server: the streaming and protocol services. */
export interface StreamFallback {
  serves(path: string): boolean;
  /** `timeoutMs` is the call's parsed `grpc-timeout`, if it sent one. */
  handle(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, timeoutMs?: number): void;
}

/**
 * Serves Connect routes, gRPC protocol only, on raw node:http2 streams: the services that are not the hot path
 * (grpc.health.v1 with its streaming Watch, server reflection) keep their one implementation, shared with the HTTP
 * port, while Check and KeyVerify take the direct path. Connect applies the gRPC rules to these calls itself
 * (timeouts, compression, `readMaxBytes`).
 */
export function createConnectFallback(
  routes: (router: ConnectRouter) => void,
  options: { readMaxBytes: number },
): StreamFallback {
  const router = createConnectRouter({
    grpc: true,
    grpcWeb: false,
    connect: false,
    readMaxBytes: options.readMaxBytes,
  });
  routes(router);
  const handlers = new Map<string, UniversalHandler>(router.handlers.map((h) => [h.requestPath, h]));
  return {
    serves: (path) => handlers.has(path),
    handle(stream, headers, timeoutMs) {
      const handler = handlers.get(headers[":path"] ?? "");
      if (!handler) return;
      const aborted = new AbortController();
      // Connect applies the deadline to the handler, not to reading the request: a client that never finishes its
      // message would hold the stream past its own deadline. Answered here if nothing was by then.
      const deadline =
        timeoutMs === undefined || timeoutMs > MAX_TIMER_MS
          ? undefined
          : setTimeout(() => {
              if (canRespond(stream)) respondStatus(stream, Status.DEADLINE_EXCEEDED, "deadline exceeded");
              aborted.abort();
            }, timeoutMs);
      // The client reset the stream, or the answer is complete: either way a streaming method should stop.
      stream.once("close", () => {
        clearTimeout(deadline);
        aborted.abort();
      });
      let request: UniversalServerRequest;
      try {
        request = {
          httpVersion: "2.0",
          method: headers[":method"] ?? "POST",
          url: `http://${headers[":authority"] ?? "localhost"}${headers[":path"]}`,
          header: toHeaders(headers),
          // Connect stops reading at a message it rejects; a plain stream iterator would then destroy the stream
          // (RST_STREAM CANCEL), and the client would never see the status Connect answers with.
          body: stream.iterator({ destroyOnReturn: false }),
          signal: aborted.signal,
        };
      } catch {
        respondStatus(stream, Status.INTERNAL, "the request headers could not be read");
        return;
      }
      handler(request).then(
        (response) => writeResponse(stream, response),
        () => {
          if (canRespond(stream)) respondStatus(stream, Status.INTERNAL, "internal error");
        },
      );
    },
  };
}

function toHeaders(incoming: http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(incoming)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else headers.set(name, value);
  }
  return headers;
}

function toObject(headers: Headers | undefined, into: http2.OutgoingHttpHeaders): http2.OutgoingHttpHeaders {
  headers?.forEach((value, name) => {
    into[name] = value;
  });
  return into;
}

/** Writes a Connect handler's answer: headers, the body with backpressure, then trailers read once it is sent. */
async function writeResponse(
  stream: http2.ServerHttp2Stream,
  response: UniversalServerResponse,
): Promise<void> {
  if (!canRespond(stream)) return;
  const headers = toObject(response.header, { ":status": response.status });
  if (response.body === undefined) {
    stream.respond(toObject(response.trailer, headers), { endStream: true });
    return;
  }
  const trailer = response.trailer;
  stream.respond(headers, { waitForTrailers: trailer !== undefined });
  // Streaming handlers fill their trailer in only after the last message.
  if (trailer) stream.once("wantTrailers", () => stream.sendTrailers(toObject(trailer, {})));
  try {
    for await (const chunk of response.body) {
      if (stream.destroyed || stream.closed) return;
      if (!stream.write(chunk)) {
        await new Promise<void>((resolve) => {
          const go = () => {
            stream.off("drain", go);
            stream.off("close", go);
            resolve();
          };
          stream.once("drain", go);
          stream.once("close", go);
        });
      }
    }
    if (!stream.destroyed) stream.end();
  } catch (error) {
    // The handler's stream failed after the headers went out (a request message it could not read, say): the
    // status still goes out in the trailers, as gRPC clients expect, rather than as a bare stream reset.
    if (stream.destroyed) return;
    if (!trailer) {
      stream.close();
      return;
    }
    const failed = ConnectError.from(error);
    stream.removeAllListeners("wantTrailers");
    stream.once("wantTrailers", () =>
      stream.sendTrailers({
        "grpc-status": String(failed.code),
        "grpc-message": encodeGrpcMessage(failed.rawMessage),
      }),
    );
    stream.end();
  }
}
