/**
 * What the grpc-js reference servers share: a grpc-js server with Envoy's Check as its only method, buffer
 * (de)serializers so each server does its own protobuf work (or none), `LISTENING <port>` on stdout once bound,
 * and an exit on SIGTERM/SIGINT.
 */
import { type handleUnaryCall, Server, ServerCredentials, type ServiceDefinition } from "@grpc/grpc-js";

const identity = (b: Buffer): Buffer => b;

const definition: ServiceDefinition = {
  Check: {
    path: "/envoy.service.auth.v3.Authorization/Check",
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

/** Serves `check` on 127.0.0.1 at the port in argv[2] (default any free port) until the process is signalled. */
export function serveCheck(check: handleUnaryCall<Buffer, Buffer>): void {
  const server = new Server();
  server.addService(definition, { Check: check });
  server.bindAsync(
    `127.0.0.1:${process.argv[2] ?? "0"}`,
    ServerCredentials.createInsecure(),
    (error, port) => {
      if (error) {
        console.error(error);
        process.exit(1);
      }
      process.stdout.write(`LISTENING ${port}\n`);
    },
  );
  // process.exit (not a signal death) so that --cpu-prof gets to write its profile.
  const exit = (): void => {
    server.forceShutdown();
    process.exit(0);
  };
  process.on("SIGTERM", exit);
  process.on("SIGINT", exit);
}
