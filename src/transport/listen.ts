import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import { bindPort } from "./bind-port.js";
import {
  boundSession,
  DEFAULT_HTTP_LIMITS,
  endUploadsAfterEarlyResponses,
  type HttpLimits,
  http1ServerOptions,
} from "./request-bounds.js";
import { createStreamMapRecycler, type StreamMapRecycler } from "./stream-map-recycler.js";

/** A request handler both `http` and `http2` servers accept, such as the output of `connectNodeAdapter`. */
export type HttpHandler = (
  request: http.IncomingMessage | http2.Http2ServerRequest,
  response: http.ServerResponse | http2.Http2ServerResponse,
) => void;

/** A listening HTTP/1.1 + h2c port. */
export interface HttpListener {
  /** The bound port (useful with port 0). */
  port: number;
  /** The HTTP/2 sessions whose stream maps are recycled (see stream-map-recycler.ts). */
  readonly streamMaps: Pick<StreamMapRecycler, "watching" | "watched" | "unsupported" | "recycled">;
  /** Stops accepting, lets in-flight requests finish for a short grace period, then destroys what is left. */
  close(): Promise<void>;
}

/** Options for `listenHttp`. */
export interface ListenHttpOptions {
  host: string;
  port: number;
  /** How long `close()` waits for open requests and streams before destroying them (default 2000 ms). */
  closeGraceMs?: number;
  /** Header size and timeouts (default DEFAULT_HTTP_LIMITS). */
  limits?: Partial<HttpLimits>;
}

// A client speaking HTTP/2 with prior knowledge (h2c) starts with this exact preface (RFC 9113 §3.4).
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/**
 * Serves `handler` over cleartext HTTP/1.1 and HTTP/2 (h2c, prior knowledge) on one port: Node's servers can each
 * speak only one of them, so a plain TCP server reads the first bytes and hands the socket to the right one.
 */
export async function listenHttp(handler: HttpHandler, options: ListenHttpOptions): Promise<HttpListener> {
  const limits: HttpLimits = { ...DEFAULT_HTTP_LIMITS, ...options.limits };
  const bounded = endUploadsAfterEarlyResponses(handler);
  const h1 = http.createServer(http1ServerOptions(limits), bounded);
  // An http.Server only tracks its connections (for closeIdleConnections and the headers/request timeouts)
  // once it sees "listening"; this one never listens itself, so announce it.
  h1.emit("listening");
  const h2 = http2.createServer({ settings: { maxHeaderListSize: limits.maxHeaderBytes } }, bounded);
  const sockets = new Set<net.Socket>();
  const sniffing = new Set<net.Socket>();
  const sessions = new Set<http2.ServerHttp2Session>();
  let closing: Promise<void> | undefined;

  // KeyVerify clients and browsers keep HTTP/2 connections open too (see stream-map-recycler.ts).
  const streamMaps = createStreamMapRecycler();
  h2.on("session", (session) => {
    sessions.add(session);
    streamMaps.watch(session);
    boundSession(session, limits);
    session.once("close", () => sessions.delete(session));
    // Sessions accepted while closing (the preface was already on its way) get a GOAWAY right away.
    if (closing) session.close();
  });

  const tcp = net.createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    if (closing) {
      socket.destroy();
      return;
    }
    sniff(socket);
  });

  function sniff(socket: net.Socket): void {
    sniffing.add(socket);
    const chunks: Buffer[] = [];
    let length = 0;
    const onError = () => socket.destroy();
    // A deadline, not an idle timeout: a client sending one byte of the preface at a time is never idle. After
    // the hand-over the servers' own header timeouts apply.
    const deadline = setTimeout(onError, limits.headersTimeoutMs);
    deadline.unref();
    const done = () => {
      sniffing.delete(socket);
      clearTimeout(deadline);
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("end", onError);
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const head = Buffer.concat(chunks, length);
      const compared = Math.min(head.length, PREFACE.length);
      const isH2 = head.subarray(0, compared).equals(PREFACE.subarray(0, compared));
      // A prefix of the preface could still turn out to be either; wait for more bytes.
      if (isH2 && compared < PREFACE.length) return;
      done();
      socket.pause();
      socket.unshift(head);
      if (isH2) {
        // The HTTP/2 session reads bytes already buffered on the socket before it takes over the handle.
        h2.emit("connection", socket);
      } else {
        h1.emit("connection", socket);
        // The HTTP/1 parser gets later bytes straight from the handle, but the unshifted ones only once flowing.
        socket.resume();
      }
    };
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("end", onError);
  }

  const close = async (): Promise<void> => {
    streamMaps.close();
    const closed = new Promise<void>((resolve) => tcp.close(() => resolve()));
    for (const socket of sniffing) socket.destroy();
    for (const session of sessions) session.close();
    // Closes idle connections and stops the timeout checker; it reports "not running", which is expected here.
    h1.close(() => {});
    // Keep-alive HTTP/1 connections become idle as their last response completes; close them as they do.
    const sweep = setInterval(() => h1.closeIdleConnections(), 50);
    const grace = setTimeout(() => {
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
    }, options.closeGraceMs ?? 2000);
    try {
      await closed;
    } finally {
      clearInterval(sweep);
      clearTimeout(grace);
    }
  };

  const port = await bindPort(tcp, options.port, options.host, "listenHttp");
  return {
    port,
    streamMaps,
    close: () => {
      closing ??= close();
      return closing;
    },
  };
}
