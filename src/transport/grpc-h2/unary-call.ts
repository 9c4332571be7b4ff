import type http2 from "node:http2";
import { after, type Deadline } from "../../runtime/deadline.js";
import { createUnaryMessageReader, decompress, type RawMessage } from "./message-reader.js";
import { MAX_TIMER_MS, type MessageEncoding, Status } from "./protocol.js";
import { canRespond, respondMessage, respondStatus } from "./respond.js";

/** What a unary method answers: a response message, or a gRPC status other than OK. */
export type UnaryResult =
  | { kind: "response"; bytes: Uint8Array }
  | { kind: "error"; code: number; details: string };

/**
 * A unary method: request message bytes in, `done` called once with the result. `deadline` is the caller's
 * `grpc-timeout` as an epoch time in milliseconds, or undefined; `headers` are the call's metadata (lower-case
 * names). A `done` after the call was cancelled or timed out is ignored, so a method needs no cancellation handling
 * of its own.
 */
export type UnaryMethod = (
  request: Uint8Array,
  deadline: number | undefined,
  done: (result: UnaryResult) => void,
  headers: http2.IncomingHttpHeaders,
) => void;

/** What a unary call is served with, besides its stream. */
export interface UnaryCallOptions {
  method: UnaryMethod;
  encoding: MessageEncoding;
  /** The request's headers, handed to the method as its metadata. */
  headers: http2.IncomingHttpHeaders;
  /** The parsed `grpc-timeout` in milliseconds, if sent. */
  timeoutMs: number | undefined;
  maxReceiveBytes: number;
}

/**
 * Serves one unary call on `stream`: reads its one message (bounded, decompressed), calls the method, and writes
 * the answer, unless the client cancels first (RST_STREAM: the stream closes and the answer is dropped) or the
 * deadline passes (DEADLINE_EXCEEDED, and the upload, if still running, is stopped).
 */
export function serveUnary(stream: http2.ServerHttp2Stream, options: UnaryCallOptions): void {
  const { method, encoding, maxReceiveBytes } = options;
  const reader = createUnaryMessageReader(encoding, maxReceiveBytes);
  let finished = false;
  let timer: Deadline | undefined;
  const deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;

  const finish = (): boolean => {
    if (finished) return false;
    finished = true;
    timer?.cancel();
    return true;
  };
  const fail = (code: number, details: string): void => {
    if (finish() && canRespond(stream)) respondStatus(stream, code, details);
  };
  const done = (result: UnaryResult): void => {
    if (!finish() || !canRespond(stream)) return;
    if (result.kind === "response") respondMessage(stream, result.bytes);
    else respondStatus(stream, result.code, result.details);
  };
  const dispatch = (request: Uint8Array): void => {
    if (finished) return;
    try {
      method(request, deadline, done, options.headers);
    } catch {
      // Methods are meant never to throw; one that does costs its caller an INTERNAL, not the process.
      fail(Status.INTERNAL, "internal error");
    }
  };
  // The message is decoded as soon as it is whole, so that a bad or oversize compressed one is answered even if
  // END_STREAM never comes; the method is called once both the message and END_STREAM are in.
  let request: Uint8Array | undefined;
  let ended = false;
  let decoding = false;
  const decoded = (bytes: Uint8Array): void => {
    request = bytes;
    if (ended) dispatch(bytes);
  };
  const decode = (message: RawMessage): void => {
    decoding = true;
    if (!message.compressed) {
      decoded(message.bytes);
      return;
    }
    decompress(encoding as Exclude<MessageEncoding, "identity">, message.bytes, maxReceiveBytes, (result) => {
      if (result instanceof Uint8Array) decoded(result);
      else fail(result.code, result.details);
    });
  };

  stream.on("data", (chunk: Buffer) => {
    if (finished) return;
    const error = reader.push(chunk);
    if (error) {
      fail(error.code, error.details);
      return;
    }
    if (!decoding) {
      const message = reader.message();
      if (message) decode(message);
    }
  });
  stream.once("end", () => {
    if (finished) return;
    ended = true;
    const message = reader.finish();
    if ("code" in message) fail(message.code, message.details);
    else if (request) dispatch(request);
    else if (!decoding) decode(message);
  });
  // Closed before an answer: the client reset the stream (cancellation) or the session went away.
  stream.once("close", finish);
  // A deadline beyond a timer's reach (grpc-timeout allows 99999999 hours) is as good as none.
  if (options.timeoutMs !== undefined && options.timeoutMs <= MAX_TIMER_MS) {
    timer = after(Math.max(0, Math.ceil(options.timeoutMs)), () => {
      timer = undefined;
      fail(Status.DEADLINE_EXCEEDED, "deadline exceeded");
    });
  }
}
