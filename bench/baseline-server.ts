/**
 * The baseline: a grpc-js server whose Check decodes the request with the generated Envoy types and answers OK.
 * It costs what any grpc-js + protobuf-es ext_authz service must pay, so keymesh is measured against it.
 * Usage: `node --import tsx bench/baseline-server.ts [port]`; prints `LISTENING <port>`, exits on SIGTERM/SIGINT.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { CheckRequestSchema, CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { serveCheck } from "./grpc-check-server.js";

// The server passes raw buffers, so the protobuf work happens here with protobuf-es, as keymesh's does.
serveCheck((call, callback) => {
  const request = fromBinary(CheckRequestSchema, call.request);
  // Reading one field keeps the decode observable; the baseline makes no decision.
  if (request.attributes === undefined) {
    callback({ code: 3, details: "missing attributes" });
    return;
  }
  // Encoded per call, not cached: a real service builds its response every time.
  const response = toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } }));
  callback(null, Buffer.from(response.buffer, response.byteOffset, response.byteLength));
});
