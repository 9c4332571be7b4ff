/**
 * The baseline: a grpc-js server whose Check decodes the request with the generated Envoy types and answers OK.
 * It costs what any grpc-js + protobuf-es ext_authz service must pay, so keymesh is measured against it.
 * Usage: `node --import tsx bench/baseline-server.ts [port]`; prints `LISTENING <port>`, exits on SIGTERM/SIGINT.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { CheckRequestSchema, CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";

const identity = (b: Buffer): Buffer => b;

// Buffer (de)serializers so the protobuf work happens in the handler with protobuf-es, as keymesh's will.
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

function check(call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void {
  const request = fromBinary(CheckRequestSchema, call.request);
  // Reading one field keeps the decode observable; the baseline makes no decision.
  if (request.attributes === undefined) {
    callback({ code: 3, details: "missing attributes" });
    return;
  }
  // Encoded per call, not cached: a real service builds its response every time.
  const response = toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } }));
  callback(null, Buffer.from(response.buffer, response.byteOffset, response.byteLength));
}

const server = new Server();
server.addService(definition, { Check: check });
server.bindAsync(`127.0.0.1:${process.argv[2] ?? "0"}`, ServerCredentials.createInsecure(), (error, port) => {
  if (error) {
    console.error(error);
    process.exit(1);
  }
  process.stdout.write(`LISTENING ${port}\n`);
});

// process.exit (not a signal death) so that --cpu-prof gets to write its profile.
const exit = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
