import http2 from "node:http2";
import { ACCEPT_ENCODING, encodeGrpcMessage, envelope, Status } from "./protocol.js";

/**
 * Writing a gRPC response on a node:http2 stream: HEADERS, one DATA frame with the message, then trailers with
 * `grpc-status`; or, for an error, one HEADERS frame that ends the stream ("Trailers-Only").
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#responses
 */

// Built once and frozen: node:http2 copies the headers it is given, and no caller may change them for the next call.
const OK_HEADERS = Object.freeze({
  ":status": 200,
  "content-type": "application/grpc",
  "grpc-accept-encoding": ACCEPT_ENCODING,
});
const OK_TRAILERS = Object.freeze({ "grpc-status": "0" });
// No Date header: gRPC clients do not read it, and it costs a string per call.
const WITH_TRAILERS = Object.freeze({ waitForTrailers: true, sendDate: false });
const END_STREAM = Object.freeze({ endStream: true, sendDate: false });

function sendOkTrailers(this: http2.ServerHttp2Stream): void {
  if (!this.destroyed) this.sendTrailers(OK_TRAILERS);
}

/** Whether a response can still be written on `stream`. */
export function canRespond(stream: http2.ServerHttp2Stream): boolean {
  return !stream.destroyed && !stream.closed && !stream.headersSent;
}

/** Answers with one message and `grpc-status: 0`. */
export function respondMessage(stream: http2.ServerHttp2Stream, message: Uint8Array): void {
  stream.respond(OK_HEADERS, WITH_TRAILERS);
  // `on`, not `once`: the event comes once per stream, and once's wrapper is garbage this runs per call.
  stream.on("wantTrailers", sendOkTrailers);
  stream.end(envelope(message));
}

/**
 * Answers with a status and no message, in one HEADERS frame that ends the stream. `httpStatus` is 200 for every
 * gRPC error; only a request that is not gRPC at all (wrong method or content-type) gets 405 or 415.
 */
export function respondStatus(
  stream: http2.ServerHttp2Stream,
  code: number,
  details: string,
  httpStatus = 200,
): void {
  const headers: http2.OutgoingHttpHeaders = {
    ":status": httpStatus,
    "content-type": "application/grpc",
    "grpc-status": String(code),
    "grpc-message": encodeGrpcMessage(details),
  };
  if (code === Status.UNIMPLEMENTED || code === Status.RESOURCE_EXHAUSTED || code === Status.INTERNAL) {
    headers["grpc-accept-encoding"] = ACCEPT_ENCODING;
  }
  stream.respond(headers, END_STREAM);
  endUpload(stream);
}

/**
 * After a complete response, stops a client still sending its request: RST_STREAM with NO_ERROR, which RFC 9113
 * §8.1 allows once the response is complete. A turn later, so that the response's frames are queued first.
 */
export function endUpload(stream: http2.ServerHttp2Stream): void {
  if (stream.state?.remoteClose !== 0) return;
  setImmediate(() => {
    if (!stream.destroyed && !stream.closed && stream.state?.remoteClose === 0) {
      stream.close(http2.constants.NGHTTP2_NO_ERROR);
    }
  });
}
