import type http2 from "node:http2";
import { after, type Deadline } from "../../runtime/deadline.js";
import {
  createUnaryMessageReader,
  decompress,
  type RawMessage,
  type UnaryMessageReader,
} from "./message-reader.js";
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
  const call = new UnaryCall(stream, options);
  (stream as CallStream)[CALL] = call;
  stream.on("data", onData);
  stream.on("end", onEnd);
  // Closed before an answer: the client reset the stream (cancellation) or the session went away.
  stream.on("close", onClose);
  // A deadline beyond a timer's reach (grpc-timeout allows 99999999 hours) is as good as none.
  if (options.timeoutMs !== undefined && options.timeoutMs <= MAX_TIMER_MS) {
    call.timer = after(Math.max(0, Math.ceil(options.timeoutMs)), () => call.expire());
  }
}

// The listeners are shared by every call and find theirs on the stream: this runs per Check, and a closure per
// listener per call is garbage the young generation must collect.
const CALL = Symbol("unaryCall");
type CallStream = http2.ServerHttp2Stream & { [CALL]: UnaryCall };

function onData(this: CallStream, chunk: Buffer): void {
  this[CALL].data(chunk);
}
function onEnd(this: CallStream): void {
  this[CALL].end();
}
function onClose(this: CallStream): void {
  this[CALL].finish();
}

class UnaryCall {
  private readonly reader: UnaryMessageReader;
  private readonly deadline: number | undefined;
  private finished = false;
  timer: Deadline | undefined;
  // The message is decoded as soon as it is whole, so that a bad or oversize compressed one is answered even if
  // END_STREAM never comes; the method is called once both the message and END_STREAM are in.
  private request: Uint8Array | undefined;
  private ended = false;
  private decoding = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    private readonly options: UnaryCallOptions,
  ) {
    this.reader = createUnaryMessageReader(options.encoding, options.maxReceiveBytes);
    this.deadline = options.timeoutMs === undefined ? undefined : Date.now() + options.timeoutMs;
  }

  finish(): boolean {
    if (this.finished) return false;
    this.finished = true;
    this.timer?.cancel();
    return true;
  }

  private fail(code: number, details: string): void {
    if (this.finish() && canRespond(this.stream)) respondStatus(this.stream, code, details);
  }

  expire(): void {
    this.timer = undefined;
    this.fail(Status.DEADLINE_EXCEEDED, "deadline exceeded");
  }

  private readonly done = (result: UnaryResult): void => {
    if (!this.finish() || !canRespond(this.stream)) return;
    if (result.kind === "response") respondMessage(this.stream, result.bytes);
    else respondStatus(this.stream, result.code, result.details);
  };

  private dispatch(request: Uint8Array): void {
    if (this.finished) return;
    try {
      this.options.method(request, this.deadline, this.done, this.options.headers);
    } catch {
      // Methods are meant never to throw; one that does costs its caller an INTERNAL, not the process.
      this.fail(Status.INTERNAL, "internal error");
    }
  }

  private decoded(bytes: Uint8Array): void {
    this.request = bytes;
    if (this.ended) this.dispatch(bytes);
  }

  private decode(message: RawMessage): void {
    this.decoding = true;
    if (!message.compressed) {
      this.decoded(message.bytes);
      return;
    }
    const { encoding, maxReceiveBytes } = this.options;
    decompress(encoding as Exclude<MessageEncoding, "identity">, message.bytes, maxReceiveBytes, (result) => {
      if (result instanceof Uint8Array) this.decoded(result);
      else this.fail(result.code, result.details);
    });
  }

  data(chunk: Buffer): void {
    if (this.finished) return;
    const error = this.reader.push(chunk);
    if (error) {
      this.fail(error.code, error.details);
      return;
    }
    if (!this.decoding) {
      const message = this.reader.message();
      if (message) this.decode(message);
    }
  }

  end(): void {
    if (this.finished) return;
    this.ended = true;
    const message = this.reader.finish();
    if ("code" in message) this.fail(message.code, message.details);
    else if (this.request) this.dispatch(this.request);
    else if (!this.decoding) this.decode(message);
  }
}
