import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { ServerReflection } from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import type { Reflector } from "../reflection-index.js";

/**
 * Routes for gRPC server reflection (`grpc.reflection.v1` and `v1alpha`) answered by `reflector`; a bidi stream, so
 * clients such as grpcurl need HTTP/2 (h2c is fine).
 */
export function createReflectionRoutes(reflector: Reflector): (router: ConnectRouter) => void {
  const { input: alphaRequest, output: alphaResponse } = reflector.alphaMethod;
  return (router) => {
    router.service(ServerReflection, {
      async *serverReflectionInfo(requests) {
        for await (const request of requests) yield reflector.answer(request);
      },
    });
    router.rpc(reflector.alphaMethod, async function* (requests) {
      for await (const request of requests) {
        yield fromBinary(alphaResponse, reflector.answerBytes(toBinary(alphaRequest, request)));
      }
    });
  };
}
