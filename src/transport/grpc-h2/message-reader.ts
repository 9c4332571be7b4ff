import zlib from "node:zlib";
import { type MessageEncoding, Status } from "./protocol.js";

/**
 * Reading the one request message of a unary call from its DATA frames: the 5-byte prefix (compressed flag, then a
 * big-endian length), the bytes it announces, and decompression with `grpc-encoding`.
 * https://github.com/grpc/grpc/blob/master/doc/PROTOCOL-HTTP2.md#requests ("Length-Prefixed-Message")
 */

/** A protocol error found in the request body, answered as this gRPC status. */
export interface MessageError {
  code: number;
  details: string;
}

/** One message as sent, still compressed when `compressed` is set. */
export interface RawMessage {
  compressed: boolean;
  bytes: Uint8Array;
}

/** Collects a unary request body chunk by chunk; bounded by `maxBytes` before anything is buffered past it. */
export interface UnaryMessageReader {
  /** Adds a chunk; returns an error as soon as the bytes so far break the protocol or the size limit. */
  push(chunk: Buffer): MessageError | undefined;
  /** The message, once all its bytes have arrived (before END_STREAM, which may come later or never). */
  message(): RawMessage | undefined;
  /** The body is complete (END_STREAM): exactly one whole message, or the error. */
  finish(): RawMessage | MessageError;
}

const tooLarge = (size: number, max: number): MessageError => ({
  code: Status.RESOURCE_EXHAUSTED,
  details: `received message larger than max (${size} vs. ${max})`,
});

/** A reader for a call whose `grpc-encoding` is `encoding`, accepting messages up to `maxBytes`. */
export function createUnaryMessageReader(encoding: MessageEncoding, maxBytes: number): UnaryMessageReader {
  return new MessageReader(encoding, maxBytes);
}

// A class rather than closures: one is made per call, and its methods are shared.
class MessageReader implements UnaryMessageReader {
  private first: Buffer | undefined;
  private chunks: Buffer[] | undefined;
  private length = 0;
  private announced = -1;
  private compressed = false;

  constructor(
    private readonly encoding: MessageEncoding,
    private readonly maxBytes: number,
  ) {}

  // Chunks are joined once, when first read whole: message() and finish() may both read the same message.
  private head(): Buffer {
    if (this.chunks) {
      this.first = Buffer.concat(this.chunks, this.length);
      this.chunks = undefined;
    }
    return this.first as Buffer;
  }

  push(chunk: Buffer): MessageError | undefined {
    if (chunk.length === 0) return undefined;
    if (this.first === undefined) this.first = chunk;
    else {
      this.chunks ??= [this.first];
      this.chunks.push(chunk);
    }
    this.length += chunk.length;
    if (this.announced < 0 && this.length >= 5) {
      const bytes = this.head();
      const flag = bytes[0]!;
      if (flag > 1) return { code: Status.INTERNAL, details: `invalid message flag ${flag}` };
      this.compressed = flag === 1;
      if (this.compressed && this.encoding === "identity") {
        return {
          code: Status.INTERNAL,
          details: "compressed message flag set with no grpc-encoding (identity)",
        };
      }
      this.announced = bytes.readUInt32BE(1);
      if (this.announced > this.maxBytes) return tooLarge(this.announced, this.maxBytes);
    }
    // Bytes past the first message: a second message, which a unary call may not carry.
    if (this.announced >= 0 && this.length > 5 + this.announced) {
      return { code: Status.INTERNAL, details: "a unary call carried more than one request message" };
    }
    return undefined;
  }

  message(): RawMessage | undefined {
    if (this.announced < 0 || this.length < 5 + this.announced) return undefined;
    return { compressed: this.compressed, bytes: this.head().subarray(5, 5 + this.announced) };
  }

  finish(): RawMessage | MessageError {
    if (this.first === undefined) {
      return { code: Status.INTERNAL, details: "the call ended without a request message" };
    }
    return this.message() ?? { code: Status.INTERNAL, details: "the call ended inside a request message" };
  }
}

/**
 * Decompresses a message sent with `encoding`, stopping at `maxBytes` of output (a compression bomb costs at most
 * that): RESOURCE_EXHAUSTED past it, INTERNAL for bytes that are not valid gzip or zlib data.
 */
export function decompress(
  encoding: Exclude<MessageEncoding, "identity">,
  bytes: Uint8Array,
  maxBytes: number,
  done: (result: Uint8Array | MessageError) => void,
): void {
  const callback = (error: Error | null, output: Buffer) => {
    if (!error) done(output);
    else if ((error as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE") {
      // Decompression stopped at the limit, so the full size is not known.
      done({
        code: Status.RESOURCE_EXHAUSTED,
        details: `decompressed message larger than max (${maxBytes})`,
      });
    } else done({ code: Status.INTERNAL, details: `the request message is not valid ${encoding} data` });
  };
  const options = { maxOutputLength: Math.max(1, maxBytes) };
  if (encoding === "gzip") zlib.gunzip(bytes, options, callback);
  else zlib.inflate(bytes, options, callback);
}
