/**
 * The ceiling: raw node:http2 answering every POST with a canned gRPC OK, no gRPC library and no decoding.
 * Nothing built on Node's HTTP/2 stack can beat it on this machine, so it bounds what optimisation can win.
 * Usage: `node --import tsx bench/ceiling-server.ts [port]`; prints `LISTENING <port>`, exits on SIGTERM/SIGINT.
 */

import { createServer, type ServerHttp2Stream } from "node:http2";
import type { AddressInfo } from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { grpcFrame } from "./fixtures.js";

const body = grpcFrame(toBinary(CheckResponseSchema, create(CheckResponseSchema, { status: { code: 0 } })));
const responseHeaders = { ":status": 200, "content-type": "application/grpc" };
const trailers = { "grpc-status": "0" };

function answer(stream: ServerHttp2Stream): void {
  stream.respond(responseHeaders, { waitForTrailers: true });
  stream.once("wantTrailers", () => stream.sendTrailers(trailers));
  stream.end(body);
}

const server = createServer();
server.on("stream", (stream, headers) => {
  if (headers[":method"] !== "POST") {
    stream.respond({ ":status": 405 }, { endStream: true });
    return;
  }
  // A client reset (h2load stopped mid-run) is routine here and must not crash the server.
  stream.on("error", () => {});
  // Answer once the request is fully read, as a unary gRPC server does.
  stream.on("end", () => answer(stream));
  stream.resume();
});
server.listen(Number(process.argv[2] ?? 0), "127.0.0.1", () => {
  process.stdout.write(`LISTENING ${(server.address() as AddressInfo).port}\n`);
});

// process.exit (not a signal death) so that --cpu-prof gets to write its profile.
const exit = (): void => process.exit(0);
process.on("SIGTERM", exit);
process.on("SIGINT", exit);
