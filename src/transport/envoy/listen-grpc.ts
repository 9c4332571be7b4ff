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

/** Binds `server` (plaintext: TLS to Envoy is the mesh's job) on host:port, port 0 meaning any free port. */
export async function listenGrpc(
  server: grpc.Server,
  options: { host: string; port: number },
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
  if (servers instanceof Map) {
    for (const http2Server of servers.keys()) {
      (http2Server as { on?(event: string, listener: (session: object) => void): unknown }).on?.(
        "session",
        (session) => streamMaps.watch(session),
      );
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
