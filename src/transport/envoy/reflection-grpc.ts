import * as grpc from "@grpc/grpc-js";
import type { Reflector } from "../reflection-index.js";
import { bufferSerializers } from "./grpc-util.js";

type ReflectionCall = grpc.ServerDuplexStream<Buffer, Uint8Array>;

interface ReflectionImplementation extends grpc.UntypedServiceImplementation {
  ServerReflectionInfo: grpc.handleBidiStreamingCall<Buffer, Uint8Array>;
}

const definition = (version: "v1" | "v1alpha"): grpc.ServiceDefinition<ReflectionImplementation> => ({
  ServerReflectionInfo: {
    path: `/grpc.reflection.${version}.ServerReflection/ServerReflectionInfo`,
    requestStream: true,
    responseStream: true,
    originalName: "serverReflectionInfo",
    ...bufferSerializers,
  },
});

/**
 * Registers gRPC server reflection, `grpc.reflection.v1` and `v1alpha`, on a grpc-js server: grpcurl and other
 * reflection clients list and describe the gRPC port's services. One answer per request, in order; the messages
 * of both versions are identical on the wire, so both paths share the v1 codec.
 */
export function addReflectionService(server: grpc.Server, reflector: Reflector): void {
  const implementation: ReflectionImplementation = {
    ServerReflectionInfo(call: ReflectionCall) {
      call.on("data", (request: Buffer) => {
        try {
          call.write(reflector.answerBytes(request));
        } catch {
          // grpc-js ends a server stream with the status of an emitted error.
          call.emit("error", {
            code: grpc.status.INVALID_ARGUMENT,
            details: "the reflection request could not be decoded",
          });
        }
      });
      call.on("end", () => call.end());
    },
  };
  server.addService(definition("v1"), implementation);
  server.addService(definition("v1alpha"), implementation);
}
