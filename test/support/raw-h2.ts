import net from "node:net";

/** One HTTP/2 frame as read off the wire. */
export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export const FRAME = { DATA: 0, HEADERS: 1, RST_STREAM: 3, SETTINGS: 4, GOAWAY: 7, CONTINUATION: 9 } as const;

/** The client connection preface (RFC 9113 §3.4). */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

/** One HTTP/2 frame: 9-byte head then payload (RFC 9113 §4.1). */
export function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([head, payload]);
}

/**
 * Splits the bytes a peer sends into frames as they arrive: `push` returns the frames completed by `chunk`;
 * `leftover` counts bytes that do not yet make a whole frame.
 */
export function createFrameReader(): { push(chunk: Buffer): Frame[]; readonly leftover: number } {
  let pending = Buffer.alloc(0);
  return {
    push(chunk) {
      pending = Buffer.concat([pending, chunk]);
      const frames: Frame[] = [];
      while (pending.length >= 9) {
        const length = pending.readUIntBE(0, 3);
        if (pending.length < 9 + length) break;
        frames.push({
          type: pending[3]!,
          flags: pending[4]!,
          streamId: pending.readUInt32BE(5) & 0x7fffffff,
          payload: pending.subarray(9, 9 + length),
        });
        pending = pending.subarray(9 + length);
      }
      return frames;
    },
    get leftover() {
      return pending.length;
    },
  };
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1). */
function hpackInt(value: number, prefixBits: number, firstByte: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([firstByte | value]);
  const out = [firstByte | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest & 127) | 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return Buffer.from(out);
}

/** A header block of literal fields without indexing, no Huffman: any size, nothing for the peer to remember. */
function headerBlock(path: string, headers: [string, string][]): Buffer {
  const literal = (name: string, value: string) =>
    Buffer.concat([
      Buffer.from([0]),
      hpackInt(Buffer.byteLength(name), 7, 0),
      Buffer.from(name),
      hpackInt(Buffer.byteLength(value), 7, 0),
      Buffer.from(value),
    ]);
  // :method POST, :scheme http (static table 3 and 6), then :path and :authority with indexed names 4 and 1.
  const path_ = Buffer.concat([
    hpackInt(4, 4, 0),
    hpackInt(Buffer.byteLength(path), 7, 0),
    Buffer.from(path),
  ]);
  const authority = Buffer.concat([hpackInt(1, 4, 0), Buffer.from([1]), Buffer.from("x")]);
  return Buffer.concat([
    Buffer.from([0x83, 0x86]),
    path_,
    authority,
    ...headers.map(([n, v]) => literal(n, v)),
  ]);
}

/**
 * Opens an h2c connection, completes the SETTINGS exchange (so the server's advertised limits are in force), then
 * sends one request (stream 1) with `headers` and `body`, and returns the frames received until the stream or the
 * connection ends, or `timeoutMs` passes.
 */
export function rawH2Request(
  port: number,
  request: { path: string; headers: [string, string][]; body?: Buffer },
  timeoutMs = 5000,
): Promise<Frame[]> {
  return new Promise((resolve) => {
    const frames: Frame[] = [];
    const reader = createFrameReader();
    let sent = false;
    const socket = net.connect(port, "127.0.0.1");
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(frames);
    };
    const timer = setTimeout(done, timeoutMs);
    socket.on("error", done);
    socket.on("close", done);
    socket.on("connect", () =>
      socket.write(Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))])),
    );
    socket.on("data", (chunk: Buffer) => {
      for (const f of reader.push(chunk)) {
        frames.push(f);
        if (f.type === FRAME.SETTINGS && (f.flags & 1) === 0 && !sent) {
          sent = true;
          const block = headerBlock(request.path, request.headers);
          const parts = [frame(FRAME.SETTINGS, 1, 0, Buffer.alloc(0))];
          const endStream = request.body === undefined ? 1 : 0;
          for (let off = 0; off < block.length || off === 0; off += 16_000) {
            const last = off + 16_000 >= block.length;
            const type = off === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
            const flags = (last ? 4 : 0) | (off === 0 ? endStream : 0);
            parts.push(frame(type, flags, 1, block.subarray(off, off + 16_000)));
          }
          if (request.body !== undefined) parts.push(frame(FRAME.DATA, 1, 1, request.body));
          socket.write(Buffer.concat(parts));
        }
        const ends =
          f.type === FRAME.GOAWAY ||
          (f.streamId === 1 && (f.type === FRAME.RST_STREAM || (f.flags & 1) === 1));
        if (ends) {
          done();
          return;
        }
      }
    });
  });
}
