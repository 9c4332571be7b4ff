/**
 * A node:http2 client that sends a gRPC request exactly as told (any headers, body chunks, then END_STREAM, a reset
 * or nothing), and a raw-socket client for frames node:http2 would never send.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { CheckRequestSchema } from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { createFrameReader, type Frame, frame, PREFACE } from "../../support/raw-h2.js";

export const CHECK = "/envoy.service.auth.v3.Authorization/Check";

/** A valid CheckRequest presenting `token` as a bearer key. */
export function checkRequestBytes(token: string): Buffer {
  const request = create(CheckRequestSchema, {
    attributes: {
      request: {
        http: { method: "GET", path: "/x", host: "api", headers: { authorization: `Bearer ${token}` } },
      },
    },
  });
  return Buffer.from(toBinary(CheckRequestSchema, request));
}

/** How a sent request ends: END_STREAM, RST_STREAM(CANCEL) after the body, or neither. */
export type Ending = "end" | "reset" | "stall";

export interface H2Outcome {
  status?: number;
  headers: Record<string, string>;
  trailers: Record<string, string>;
  body: Buffer;
  /** RST_STREAM code from the server, if it reset the stream. */
  rstCode?: number;
  /** The stream ended without a response (we reset it, or the timeout passed). */
  unanswered: boolean;
  elapsedMs: number;
}

function flat(headers: http2.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = String(v);
  return out;
}

/** Sends one request on a fresh connection and collects what comes back within `timeoutMs`. */
export function h2Call(
  port: number,
  request: { headers: http2.OutgoingHttpHeaders; chunks: Buffer[]; ending: Ending },
  timeoutMs = 3000,
): Promise<H2Outcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    const outcome: H2Outcome = {
      headers: {},
      trailers: {},
      body: Buffer.alloc(0),
      unanswered: true,
      elapsedMs: 0,
    };
    const parts: Buffer[] = [];
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      outcome.body = Buffer.concat(parts);
      outcome.elapsedMs = performance.now() - started;
      session.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(finish, timeoutMs);
    const stream = session.request({ ":method": "POST", ":path": CHECK, ...request.headers });
    stream.on("error", () => {});
    stream.on("response", (headers) => {
      outcome.status = Number(headers[":status"]);
      outcome.headers = flat(headers);
      outcome.unanswered = false;
    });
    stream.on("trailers", (trailers) => {
      outcome.trailers = flat(trailers);
    });
    stream.on("data", (chunk: Buffer) => parts.push(chunk));
    stream.on("close", () => {
      if (stream.rstCode !== undefined && stream.rstCode !== 0 && outcome.unanswered)
        outcome.rstCode = stream.rstCode;
      finish();
    });
    for (const chunk of request.chunks) stream.write(chunk);
    if (request.ending === "end") stream.end();
    else if (request.ending === "reset") setTimeout(() => stream.close(http2.constants.NGHTTP2_CANCEL), 20);
  });
}

/** The gRPC status of an outcome, from the trailers or a Trailers-Only response. */
export function grpcStatus(outcome: H2Outcome): number | undefined {
  const value = outcome.trailers["grpc-status"] ?? outcome.headers["grpc-status"];
  return value === undefined ? undefined : Number(value);
}

export { frame } from "../../support/raw-h2.js";

/**
 * Sends the preface, an empty SETTINGS, then `bytes`, and collects the frames the server sends until it closes
 * the connection or `waitMs` passes. `ackPings` answers the server's PINGs as a live client would.
 */
export function rawExchange(
  port: number,
  bytes: Buffer,
  options: { waitMs: number; ackPings?: boolean },
): Promise<{ frames: Frame[]; closed: boolean; garbage: boolean; elapsedMs: number }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const frames: Frame[] = [];
    const reader = createFrameReader();
    let closed = false;
    const socket = net.connect(port, "127.0.0.1");
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      // Leftover bytes that never made a whole frame mean the server wrote something that is not HTTP/2.
      resolve({ frames, closed, garbage: reader.leftover > 0, elapsedMs: performance.now() - started });
    };
    const timer = setTimeout(done, options.waitMs);
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      done();
    });
    socket.on("connect", () =>
      socket.write(Buffer.concat([PREFACE, frame(4, 0, 0, Buffer.alloc(0)), bytes])),
    );
    socket.on("data", (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        frames.push(f);
        if (f.type === 6 && (f.flags & 1) === 0 && options.ackPings) socket.write(frame(6, 1, 0, f.payload));
      }
    });
  });
}
