import type http2 from "node:http2";
import * as grpc from "@grpc/grpc-js";
import { createStreamMapRecycler, type StreamMapRecycler } from "../stream-map-recycler.js";

/** A bound gRPC listener. */
export interface GrpcListener {
  port: number;
  /** The HTTP/2 sessions whose stream maps are recycled (see stream-map-recycler.ts). */
  readonly streamMaps: Pick<StreamMapRecycler, "watching" | "watched" | "unsupported" | "recycled">;
  /** Stops accepting calls, lets running ones finish for up to `graceMs`, then cancels the rest. */
  close(graceMs?: number): Promise<void>;
}

/**
 * Binds `server` (plaintext: TLS to Envoy is the mesh's job) on host:port, port 0 meaning any free port.
 * `maxMetadataBytes` bounds each call's HTTP/2 header list (default 16 KiB); a larger one is reset with
 * ENHANCE_YOUR_CALM, which gRPC clients report as RESOURCE_EXHAUSTED.
 */
export async function listenGrpc(
  server: grpc.Server,
  options: { host: string; port: number; maxMetadataBytes?: number },
): Promise<GrpcListener> {
  // IPv6 literals need brackets in a gRPC target.
  const host =
    options.host.includes(":") && !options.host.startsWith("[") ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${options.port}`, grpc.ServerCredentials.createInsecure(), (error, bound) =>
      error ? reject(error) : resolve(bound),
    );
  });
  const streamMaps = createStreamMapRecycler();
  // grpc-js does not expose its node:http2 servers; they sit in a private field, read by shape. Should a grpc-js
  // release move them, no session is watched, and the listener test that counts watched sessions fails.
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  // grpc-js ignores grpc.max_metadata_size on servers and leaves node:http2's header list limit at its default, so
  // the limit is set on the same servers; sessions start after this (the port was bound a microtask ago).
  const maxHeaderListSize = options.maxMetadataBytes ?? 16 * 1024;
  if (servers instanceof Map) {
    for (const http2Server of servers.keys()) {
      const h2 = http2Server as {
        on?(event: string, listener: (session: object) => void): unknown;
        updateSettings?(settings: { maxHeaderListSize: number }): void;
      };
      h2.updateSettings?.({ maxHeaderListSize });
      h2.on?.("session", (session) => {
        streamMaps.watch(session);
        forceClosesAfterGrace(session as http2.ServerHttp2Session);
      });
    }
  }
  return {
    port,
    streamMaps,
    close(graceMs = 2000) {
      streamMaps.close();
      return new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    },
  };
}

/** How long a session grpc-js closed gracefully (idle timeout, shutdown) may take to finish before it is dropped. */
export const SESSION_CLOSE_GRACE_MS = 2000;

/**
 * grpc-js closes idle sessions with `close()`, which waits for any frame still arriving: a client trickling the bytes
 * of a HEADERS frame would keep its connection forever. A close that has not finished after the grace is forced.
 */
function forceClosesAfterGrace(session: http2.ServerHttp2Session): void {
  const close = session.close.bind(session);
  session.close = (callback?: () => void) => {
    close(callback);
    setTimeout(() => {
      if (!session.destroyed) session.destroy();
    }, SESSION_CLOSE_GRACE_MS).unref();
  };
}
