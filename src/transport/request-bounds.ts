import type http from "node:http";
import http2 from "node:http2";
import type net from "node:net";

/** What one connection or request on the HTTP port may cost. */
export interface HttpLimits {
  /** HTTP/1.1 header block size and HTTP/2 header list size, in bytes. */
  maxHeaderBytes: number;
  /** Time for a request's headers to arrive, and for a new connection to send its first request. */
  headersTimeoutMs: number;
  /** Time for a whole request, headers and body, to arrive. */
  requestTimeoutMs: number;
  /** How long a keep-alive connection, or an HTTP/2 session with no open stream, may stay idle. */
  idleTimeoutMs: number;
}

/** The limits a listener uses when given none. */
export const DEFAULT_HTTP_LIMITS: HttpLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 65_000,
};

/**
 * After an early HTTP/1.1 response the client may still be sending a body nobody reads. Closing at once could make
 * the client's TCP stack drop the response (a reset), so the server half-closes, discards what still arrives for
 * this long, then closes.
 */
export const EARLY_RESPONSE_LINGER_MS = 500;

type Request = http.IncomingMessage | http2.Http2ServerRequest;
type Response = http.ServerResponse | http2.Http2ServerResponse;

/**
 * Wraps `handler` so that a response sent before its request was fully received ends the upload: HTTP/2 resets the
 * stream with NO_ERROR once the response is complete (RFC 9113 §8.1); HTTP/1.1 answers with `Connection: close`
 * and closes after a linger. Without it a refused request would still be read (a keep-alive HTTP/1.1 connection
 * reads all of it, an HTTP/2 stream whose handler read a little is left open).
 */
export function endUploadsAfterEarlyResponses(
  handler: (req: Request, res: Response) => void,
): (req: Request, res: Response) => void {
  return (req, res) => {
    if ("stream" in req) {
      const stream = req.stream;
      // The compatibility API sends trailers from its own wantTrailers listener on setImmediate; resetting before
      // would drop them, so this runs one turn later.
      stream.once("wantTrailers", () => {
        setImmediate(() => {
          if (!stream.destroyed && !stream.closed && stream.state.remoteClose === 0) {
            stream.close(http2.constants.NGHTTP2_NO_ERROR);
          }
        });
      });
    } else {
      closeIfAnsweredEarly(req, res as http.ServerResponse);
    }
    handler(req, res);
  };
}

/** Makes an HTTP/1.1 response whose headers go out before its request was received whole close the connection. */
function closeIfAnsweredEarly(req: http.IncomingMessage, res: http.ServerResponse): void {
  // Taken now: a handler that destroys the request (as connect-node does past readMaxBytes) detaches it.
  const socket = req.socket;
  const writeHead = res.writeHead;
  // Every path to the wire goes through writeHead (implicit headers call it too), and the decision must be made
  // before the headers are: the client must not reuse a connection the server is about to close.
  res.writeHead = function (this: http.ServerResponse, ...args: Parameters<typeof writeHead>) {
    if (!req.complete && !this.headersSent) {
      this.setHeader("connection", "close");
      // Node ends the connection with destroySoon() once the response is written.
      socket.destroySoon = () => closeAfterLinger(socket);
    }
    return writeHead.apply(this, args);
  } as typeof writeHead;
}

function closeAfterLinger(socket: net.Socket): void {
  if (socket.destroyed) return;
  socket.end();
  setTimeout(() => socket.destroy(), EARLY_RESPONSE_LINGER_MS).unref();
}

/**
 * Bounds an HTTP/2 session in time: it must open a stream within the headers timeout, may stay without an open
 * stream for at most the idle timeout, and each stream's request must arrive whole (END_STREAM from the client)
 * within the request timeout, else the stream is reset with CANCEL. Byte-level idle timers would not do: a client
 * trickling one byte of a HEADERS frame at a time is never idle but never opens a stream either.
 */
export function boundSession(session: http2.ServerHttp2Session, limits: HttpLimits): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const arm = (ms: number) => {
    idle = setTimeout(() => {
      // destroy() still sends GOAWAY (naming the last stream processed); close() would wait for a partial frame.
      if (open === 0 && !session.destroyed) session.destroy();
    }, ms);
    idle.unref();
  };
  arm(limits.headersTimeoutMs);
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    open++;
    clearTimeout(idle);
    const deadline = setTimeout(() => {
      if (!stream.destroyed && !stream.closed && stream.state.remoteClose === 0) {
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
    }, limits.requestTimeoutMs);
    deadline.unref();
    stream.once("close", () => {
      clearTimeout(deadline);
      open--;
      if (open === 0 && !session.closed && !session.destroyed) arm(limits.idleTimeoutMs);
    });
  });
  session.once("close", () => clearTimeout(idle));
}

/** Node's HTTP/1.1 server options enforcing `limits`; it checks its timeouts every `connectionsCheckingInterval`. */
export function http1ServerOptions(limits: HttpLimits): http.ServerOptions {
  return {
    maxHeaderSize: limits.maxHeaderBytes,
    headersTimeout: limits.headersTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.idleTimeoutMs,
    // Node checks the two timeouts above only this often (30 s by default), so a short timeout needs a short period.
    connectionsCheckingInterval: Math.max(25, Math.min(1000, Math.floor(limits.headersTimeoutMs / 4))),
  };
}
