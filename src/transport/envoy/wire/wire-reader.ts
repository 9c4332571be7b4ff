/**
 * A bounds-checked protobuf wire-format cursor for hand-written decoders of hot-path messages. Nested messages are
 * read by narrowing `end` (enter/leave) rather than by new objects, and tags and bounds live in fields rather than
 * returned tuples, so reading allocates nothing but the strings a decoder keeps.
 */

const VARINT = 0;
const I64 = 1;
/** The length-delimited wire type (strings, bytes, embedded messages). */
export const LEN = 2;
const SGROUP = 3;
const EGROUP = 4;
const I32 = 5;
const MAX_GROUP_DEPTH = 32;

/** Node's Buffer method behind toString("utf8", start, end), missing from @types/node. */
type Utf8Sliceable = Buffer & { utf8Slice(start: number, end: number): string };

/** Decodes `buf` bytes [start, stop), already bounds-checked by the caller, as UTF-8. */
export function utf8Text(buf: Buffer, start: number, stop: number): string {
  // Buffer decoding substitutes U+FFFD for invalid UTF-8 instead of throwing. utf8Slice is what toString calls
  // after re-checking its arguments; the bounds are already checked, and this runs several times per Check.
  return start === stop ? "" : (buf as Utf8Sliceable).utf8Slice(start, stop);
}

/** The bytes are not valid protobuf; the message says what broke. */
export class Malformed extends Error {}

/** A cursor over protobuf bytes; every read is bounds-checked and throws Malformed past the end. */
export class Reader {
  pos = 0;
  end: number;
  field = 0;
  wireType = 0;
  /** Payload bounds of the last length-delimited field read with `bounds()`. */
  start = 0;
  stop = 0;

  constructor(readonly buf: Buffer) {
    this.end = buf.length;
  }

  /** Reads the next tag into field/wireType; false at the end of the current message. */
  next(): boolean {
    if (this.pos >= this.end) return false;
    const tag = this.varint();
    // A tag of up to 31 bits can take a shift; longer ones need division (field numbers go up to 2^29 - 1).
    this.field = tag < 0x80000000 ? tag >>> 3 : Math.floor(tag / 8);
    this.wireType = tag & 7;
    if (this.field === 0) throw new Malformed("invalid field number");
    return true;
  }

  /** Reads a varint of up to 35 bits. */
  varint(): number {
    // Lengths and tags fit in 32 bits; longer varints are only ever skipped. Most tags and lengths in a
    // CheckRequest take one byte, so that case returns before the loop.
    if (this.pos < this.end) {
      const first = this.buf[this.pos]!;
      if (first < 0x80) {
        this.pos++;
        return first;
      }
    }
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.end) throw new Malformed("truncated varint");
      const b = this.buf[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return result;
    }
    throw new Malformed("varint too long for a tag or length");
  }

  /** Whether the current field is `field` with the length-delimited wire type its schema declares. */
  isLen(field: number): boolean {
    return this.field === field && this.wireType === LEN;
  }

  /** Reads a length prefix, sets start/stop to the payload and moves past it. */
  bounds(): void {
    const length = this.varint();
    if (length > this.end - this.pos) throw new Malformed("truncated length-delimited field");
    this.start = this.pos;
    this.pos += length;
    this.stop = this.pos;
  }

  /** Narrows the reader to the embedded message that follows; returns the outer end for `leave`. */
  enter(): number {
    this.bounds();
    const outer = this.end;
    this.pos = this.start;
    this.end = this.stop;
    return outer;
  }

  /** Returns to the enclosing message after `enter`. */
  leave(outer: number): void {
    this.pos = this.end;
    this.end = outer;
  }

  /** Decodes bytes [start, stop) as UTF-8. */
  text(start: number, stop: number): string {
    return utf8Text(this.buf, start, stop);
  }

  /** Reads a string field's payload. */
  string(): string {
    this.bounds();
    return this.text(this.start, this.stop);
  }

  /** Skips the current field, whatever its wire type, groups included: unknown fields are legal protobuf. */
  skip(): void {
    this.skipField(this.field, this.wireType, 0);
  }

  private skipField(field: number, wireType: number, depth: number): void {
    switch (wireType) {
      case VARINT:
        for (let i = 0; i < 10; i++) {
          if (this.pos >= this.end) throw new Malformed("truncated varint");
          if (this.buf[this.pos++]! < 0x80) return;
        }
        throw new Malformed("varint longer than 10 bytes");
      case I64:
        this.advance(8);
        return;
      case I32:
        this.advance(4);
        return;
      case LEN:
        this.bounds();
        return;
      case SGROUP:
        if (depth >= MAX_GROUP_DEPTH) throw new Malformed("groups nested too deeply");
        for (;;) {
          if (!this.next()) throw new Malformed("unterminated group");
          if (this.wireType === EGROUP) {
            if (this.field !== field) throw new Malformed("mismatched end group");
            return;
          }
          this.skipField(this.field, this.wireType, depth + 1);
        }
      default:
        throw new Malformed(wireType === EGROUP ? "unexpected end group" : "invalid wire type");
    }
  }

  private advance(n: number): void {
    if (n > this.end - this.pos) throw new Malformed("truncated fixed-width field");
    this.pos += n;
  }
}
