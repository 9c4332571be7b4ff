import zlib from "node:zlib";

const ZEROS = Buffer.alloc(1024 * 1024);

/** Compresses `inflatedBytes` zero bytes through `compressor` a MiB at a time: the inflated bytes never exist here. */
async function compressZeros(
  compressor: zlib.Gzip | zlib.BrotliCompress,
  inflatedBytes: number,
): Promise<Buffer> {
  const chunks: Buffer[] = [];
  compressor.on("data", (chunk: Buffer) => chunks.push(chunk));
  const ended = new Promise<void>((resolve, reject) => {
    compressor.once("end", resolve);
    compressor.once("error", reject);
  });
  for (let written = 0; written < inflatedBytes; written += ZEROS.length) {
    const chunk = ZEROS.subarray(0, Math.min(ZEROS.length, inflatedBytes - written));
    if (!compressor.write(chunk)) await new Promise((resolve) => compressor.once("drain", resolve));
  }
  compressor.end();
  await ended;
  return Buffer.concat(chunks);
}

/** One gzip member that inflates to `inflatedBytes` (1 GiB compresses to about 1 MiB at level 9). */
export function gzipBomb(inflatedBytes: number): Promise<Buffer> {
  return compressZeros(zlib.createGzip({ level: 9 }), inflatedBytes);
}

/** A brotli stream that inflates to `inflatedBytes`, at a quality fast enough to make 1 GiB in well under a second. */
export function brotliBomb(inflatedBytes: number): Promise<Buffer> {
  return compressZeros(
    zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 1 } }),
    inflatedBytes,
  );
}

/** A gRPC length-prefixed message (flag byte, 4-byte length, payload). */
export function grpcEnvelope(payload: Buffer, compressed: boolean, flags = 0): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flags | (compressed ? 1 : 0);
  head.writeUInt32BE(payload.length, 1);
  return Buffer.concat([head, payload]);
}
