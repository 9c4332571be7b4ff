import type http2 from "node:http2";

/**
 * The connection-level duties of a gRPC server on node:http2: keepalive PINGs that find dead peers, and closing
 * connections left without a call. https://github.com/grpc/grpc/blob/master/doc/keepalive.md
 */

/** Connection timing, all in milliseconds. */
export interface SessionTiming {
  /** A connection with no call open for this long is closed with GOAWAY. */
  idleTimeoutMs: number;
  /** A PING is sent after this long; 0 disables keepalive. */
  keepaliveTimeMs: number;
  /** A PING unanswered for this long means the peer is gone: the connection is dropped. */
  keepaliveTimeoutMs: number;
  /** A graceful close (GOAWAY, then waiting for open calls) that takes longer than this is forced. */
  closeGraceMs: number;
}

/**
 * Closes `session` gracefully: GOAWAY, calls in flight finish; past `graceMs` it is destroyed. node:http2's close()
 * also waits for a frame still arriving, so a peer trickling a HEADERS frame would otherwise hold it forever.
 */
export function closeSession(session: http2.ServerHttp2Session, graceMs: number): void {
  if (session.destroyed) return;
  if (!session.closed) session.close();
  setTimeout(() => {
    if (!session.destroyed) session.destroy();
  }, graceMs).unref();
}

/** Applies idle closing and keepalive to `session` until it closes. */
export function guardSession(session: http2.ServerHttp2Session, timing: SessionTiming): void {
  let open = 0;
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    idle = setTimeout(() => {
      if (open === 0) closeSession(session, timing.closeGraceMs);
    }, timing.idleTimeoutMs);
    idle.unref();
  };
  armIdle();
  session.on("stream", (stream: http2.ServerHttp2Stream) => {
    if (open++ === 0) clearTimeout(idle);
    stream.once("close", () => {
      if (--open === 0 && !session.closed && !session.destroyed) armIdle();
    });
  });

  let keepalive: NodeJS.Timeout | undefined;
  if (timing.keepaliveTimeMs > 0) {
    keepalive = setInterval(() => {
      if (session.destroyed || session.closed) return;
      const unanswered = setTimeout(() => {
        if (!session.destroyed) session.destroy();
      }, timing.keepaliveTimeoutMs);
      unanswered.unref();
      try {
        const sent = session.ping((error) => {
          clearTimeout(unanswered);
          if (error && !session.destroyed) session.destroy();
        });
        // Too many pings already unanswered (node's maxOutstandingPings): the peer is not reading.
        if (!sent) {
          clearTimeout(unanswered);
          session.destroy();
        }
      } catch {
        clearTimeout(unanswered);
      }
    }, timing.keepaliveTimeMs);
    keepalive.unref();
  }
  session.once("close", () => {
    clearTimeout(idle);
    clearInterval(keepalive);
  });
}
