import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createUnaryMessageReader } from "../../../src/transport/grpc-h2/message-reader.js";

// No database: the length-prefixed message reader alone.

/** A gRPC length-prefixed message: flag 0, big-endian length, payload. */
function framed(payload: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + payload.length);
  out.writeUInt32BE(payload.length, 1);
  out.set(payload, 5);
  return out;
}

/** `bytes` cut at the given offsets (sorted, deduplicated, within bounds). */
function cut(bytes: Buffer, offsets: number[]): Buffer[] {
  const at = [...new Set(offsets.map((o) => o % (bytes.length + 1)))].sort((a, b) => a - b);
  const pieces: Buffer[] = [];
  let from = 0;
  for (const to of [...at, bytes.length]) {
    pieces.push(bytes.subarray(from, to));
    from = to;
  }
  return pieces;
}

describe("unary message reader", () => {
  it("reads the same message however its bytes are split into chunks, and only once it is whole", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        (payload, offsets) => {
          const bytes = framed(payload);
          const reader = createUnaryMessageReader("identity", 1024);
          const chunks = cut(bytes, offsets);
          let seen = 0;
          for (const chunk of chunks) {
            expect(reader.push(chunk)).toBeUndefined();
            seen += chunk.length;
            const message = reader.message();
            if (seen < bytes.length) expect(message).toBeUndefined();
            else expect(Buffer.from(message!.bytes).equals(Buffer.from(payload))).toBe(true);
          }
          const finished = reader.finish();
          expect("bytes" in finished && Buffer.from(finished.bytes).equals(Buffer.from(payload))).toBe(true);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("refuses a call that ends inside its message, however it was split", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 1, maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.nat(),
        (payload, offsets, keep) => {
          const bytes = framed(payload);
          const truncated = bytes.subarray(0, 1 + (keep % (bytes.length - 1)));
          const reader = createUnaryMessageReader("identity", 1024);
          for (const chunk of cut(truncated, offsets)) expect(reader.push(chunk)).toBeUndefined();
          expect(reader.message()).toBeUndefined();
          expect(reader.finish()).toMatchObject({ details: "the call ended inside a request message" });
        },
      ),
      { numRuns: 1000 },
    );
  });
});
