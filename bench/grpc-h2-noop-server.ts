/**
 * keymesh's node:http2 gRPC server (src/transport/grpc-h2) answering every Check with canned OK bytes, no
 * decoding: what the server itself costs per call, the counterpart of grpc-noop. `plain` as the second argument
 * runs it without the stream-map recycler, to measure what the recycler is worth on this Node version.
 * Usage: `node --import tsx bench/grpc-h2-noop-server.ts [port] [plain]`; prints `LISTENING <port>`.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { CHECK_METHOD_PATH } from "../src/transport/envoy/check-service.js";
import { listenGrpcH2 } from "../src/transport/grpc-h2/listen.js";
import { createGrpcH2Server } from "../src/transport/grpc-h2/server.js";

const ok = toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } }));
const answer = { kind: "response" as const, bytes: ok };
const server = createGrpcH2Server();
server.unary(CHECK_METHOD_PATH, (_request, _deadline, done) => done(answer));
const listener = await listenGrpcH2(server, {
  host: "127.0.0.1",
  port: Number(process.argv[2] ?? 0),
  recycleStreamMaps: process.argv[3] !== "plain",
});
process.stdout.write(`LISTENING ${listener.port}\n`);

// process.exit (not a signal death) so that --cpu-prof gets to write its profile.
const exit = (): void => process.exit(0);
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
