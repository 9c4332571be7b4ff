import type http2 from "node:http2";
import { bindPort } from "../bind-port.js";
import { createStreamMapRecycler, type StreamMapRecycler } from "../stream-map-recycler.js";
import type { GrpcH2Server } from "./server.js";

/** A bound gRPC listener. */
export interface GrpcListener {
  port: number;
  /** The HTTP/2 sessions whose stream maps are recycled (see stream-map-recycler.ts). */
  readonly streamMaps: Pick<StreamMapRecycler, "watching" | "watched" | "unsupported" | "recycled">;
  /** Stops accepting calls, lets running ones finish for up to `graceMs`, then cancels the rest. */
  close(graceMs?: number): Promise<void>;
}

/** Options for listenGrpcH2. */
export interface ListenGrpcH2Options {
  host: string;
  /** 0 picks any free port. */
  port: number;
  /** Swap each busy session's stream map every 10 ms (see stream-map-recycler.ts); on by default. */
  recycleStreamMaps?: boolean;
}

/**
 * Binds `server` (plaintext: TLS to Envoy is the mesh's job). `close(graceMs)` sends GOAWAY on every connection, so
 * clients open no new call on it and retry elsewhere, lets the calls in flight finish for up to `graceMs`, then
 * drops what is left.
 */
export async function listenGrpcH2(
  server: GrpcH2Server,
  options: ListenGrpcH2Options,
): Promise<GrpcListener> {
  const h2 = server.http2;
  const sessions = new Set<http2.ServerHttp2Session>();
  const streamMaps = createStreamMapRecycler();
  const recycle = options.recycleStreamMaps ?? true;
  let closing: Promise<void> | undefined;

  h2.on("session", (session: http2.ServerHttp2Session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
    if (recycle) streamMaps.watch(session);
    // A connection accepted while closing (its preface was on the way) is told to go away at once.
    if (closing) session.close();
  });

  const close = async (graceMs: number): Promise<void> => {
    streamMaps.close();
    const closed = new Promise<void>((resolve) => h2.close(() => resolve()));
    for (const session of sessions) if (!session.closed) session.close();
    const force = setTimeout(() => {
      for (const session of sessions) session.destroy();
    }, graceMs);
    try {
      await closed;
    } finally {
      clearTimeout(force);
    }
  };

  const port = await bindPort(h2, options.port, options.host, "listenGrpcH2");
  return {
    port,
    streamMaps,
    close(graceMs = 2000) {
      closing ??= close(graceMs);
      return closing;
    },
  };
}
