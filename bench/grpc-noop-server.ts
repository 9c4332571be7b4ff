/**
 * The grpc-js no-op: grpc-js with buffer (de)serializers answering every Check with canned OK bytes, no decoding.
 * It is what grpc-js alone costs per call, so no Check served by grpc-js can beat it on this machine.
 * Usage: `node --import tsx bench/grpc-noop-server.ts [port]`; prints `LISTENING <port>`, exits on SIGTERM/SIGINT.
 */
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { serveCheck } from "./grpc-check-server.js";

const ok = Buffer.from(toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } })));

serveCheck((_call, callback) => callback(null, ok));
