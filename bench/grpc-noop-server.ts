/**
 * The grpc-js no-op: grpc-js with buffer (de)serializers answering every Check with canned OK bytes, no decoding.
 * It is what grpc-js alone costs per call, so no Check served by grpc-js can beat it on this machine.
 * Usage: `node --import tsx bench/grpc-noop-server.ts [port]`; prints `LISTENING <port>`, exits on SIGTERM/SIGINT.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type ServiceDefinition,
  type sendUnaryData,
} from "@grpc/grpc-js";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";

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

const ok = Buffer.from(toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } })));

function check(_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>): void {
  callback(null, ok);
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
