/**
 * One real Check over node:http2 before any load: h2load only sees HTTP status, so this is where a scenario
 * that answers grpc-status != 0, or a CheckResponse with the wrong status.code, is caught.
 */

import { connect } from "node:http2";
import { fromBinary } from "@bufbuild/protobuf";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { grpcFrame } from "./fixtures.js";
import { CHECK_PATH } from "./h2load.js";

/** What the server answered to one Check. */
export interface ProbeResult {
  grpcStatus: string | undefined;
  grpcMessage: string | undefined;
  /** CheckResponse.status.code (google.rpc.Code: 0 allow, 7 deny, 16 unauthenticated, …). */
  checkCode: number | undefined;
}

/** Sends `request` (an encoded CheckRequest) once to 127.0.0.1:port and decodes the answer. */
export function probeCheck(port: number, request: Uint8Array, timeoutMs = 5000): Promise<ProbeResult> {
  const session = connect(`http://127.0.0.1:${port}`);
  return new Promise<ProbeResult>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`probe: no answer within ${timeoutMs} ms`)), timeoutMs);
    session.once("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": CHECK_PATH,
      "content-type": "application/grpc",
      te: "trailers",
    });
    const chunks: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    stream.on("response", (h) => (headers = h));
    // Trailers-only responses (errors) carry grpc-status in the headers instead.
    stream.on("trailers", (t) => (headers = { ...headers, ...t }));
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.once("error", reject);
    stream.on("end", () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks);
      const message = body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : undefined;
      resolve({
        grpcStatus: headers["grpc-status"] as string | undefined,
        grpcMessage: headers["grpc-message"] as string | undefined,
        checkCode: message ? (fromBinary(CheckResponseSchema, message).status?.code ?? 0) : undefined,
      });
    });
    stream.end(grpcFrame(request));
  }).finally(() => session.destroy());
}

/** Throws unless the server answered grpc-status 0 with a CheckResponse whose status.code is `expectedCode`. */
export async function assertCheck(port: number, request: Uint8Array, expectedCode = 0): Promise<ProbeResult> {
  const result = await probeCheck(port, request);
  if (result.grpcStatus !== "0" || result.checkCode !== expectedCode) {
    throw new Error(
      `probe: expected grpc-status 0 and CheckResponse code ${expectedCode}, got ${JSON.stringify(result)}`,
    );
  }
  return result;
}
