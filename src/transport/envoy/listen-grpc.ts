import * as grpc from "@grpc/grpc-js";

/** A bound gRPC listener. */
export interface GrpcListener {
  port: number;
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
  return {
    port,
    close(graceMs = 2000) {
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
