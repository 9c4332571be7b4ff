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

/** A session's count of open streams, found from each of its streams when it closes. */
interface OpenStreams {
  open: number;
  closed(): void;
}

// Streams find their session's count through this symbol, so that one shared listener serves every stream: a
// closure per stream is garbage this runs per call. (A closed stream no longer knows its session.)
const GUARD = Symbol("sessionGuard");
type GuardedStream = http2.ServerHttp2Stream & { [GUARD]?: OpenStreams };

function onGuardedStreamClose(this: GuardedStream): void {
  this[GUARD]?.closed();
}

/** Applies idle closing and keepalive to `session` until it closes. */
export function guardSession(session: http2.ServerHttp2Session, timing: SessionTiming): void {
  let idle: NodeJS.Timeout | undefined;
  const armIdle = () => {
    idle = setTimeout(() => {
      if (streams.open === 0) closeSession(session, timing.closeGraceMs);
    }, timing.idleTimeoutMs);
    idle.unref();
  };
  const streams: OpenStreams = {
    open: 0,
    closed() {
      if (--streams.open === 0 && !session.closed && !session.destroyed) armIdle();
    },
  };
  armIdle();
  session.on("stream", (stream: GuardedStream) => {
    if (streams.open++ === 0) clearTimeout(idle);
    stream[GUARD] = streams;
    // `on`, not `once`: a stream closes once.
    stream.on("close", onGuardedStreamClose);
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
