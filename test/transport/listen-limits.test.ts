/** The HTTP port's header limits and timeouts (src/transport/listen.ts, request-bounds.ts); no Postgres or Redis. */
import type { ServerResponse } from "node:http";
import http2 from "node:http2";
import net from "node:net";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type HttpHandler, type HttpListener, listenHttp } from "../../src/transport/listen.js";
import { EARLY_RESPONSE_LINGER_MS, type HttpLimits } from "../../src/transport/request-bounds.js";
import { sendH1, sendH2, uploadUntilClosed } from "../support/raw-client.js";
import { FRAME, rawH2Request } from "../support/raw-h2.js";

const limits: HttpLimits = {
  maxHeaderBytes: 4096,
  headersTimeoutMs: 400,
  requestTimeoutMs: 800,
  idleTimeoutMs: 600,
};
// Node checks HTTP/1.1 timeouts periodically, and a loaded 2-core CI box adds its own delays.
const SLACK_MS = 1000;

/** Reads the whole body, then answers with its size. */
const reading: HttpHandler = (req, res) => {
  let size = 0;
  req.on("data", (chunk: Buffer) => {
    size += chunk.length;
  });
  req.on("end", () => {
    (res as ServerResponse).writeHead(200, { "content-type": "text/plain" });
    res.end(`read ${size}`);
  });
  req.on("error", () => {});
};

/** Reads the first chunk of the body, then refuses without reading the rest, as a size limit does. */
const refusing: HttpHandler = (req, res) => {
  req.once("data", () => {
    req.pause();
    (res as ServerResponse).writeHead(413, { "content-type": "text/plain" });
    res.end("no");
  });
  req.on("error", () => {});
};

let readingPort: number;
let refusingPort: number;
const listeners: HttpListener[] = [];

beforeAll(async () => {
  listeners.push(await listenHttp(reading, { host: "127.0.0.1", port: 0, limits, closeGraceMs: 100 }));
  // Default (long) timeouts: only the early-response handling may end these uploads within the test.
  listeners.push(await listenHttp(refusing, { host: "127.0.0.1", port: 0, closeGraceMs: 100 }));
  readingPort = listeners[0]!.port;
  refusingPort = listeners[1]!.port;
});

afterAll(async () => {
  await Promise.all(listeners.map((l) => l.close()));
});

/**
 * Opens a raw connection, writes `first`, then one byte every `paceMs`: the bytes of `trickled`, then `filler` for as
 * long as the connection lasts; resolves when the server closes it.
 */
function trickle(
  port: number,
  first: Buffer,
  trickled: Buffer,
  paceMs: number,
  filler = "",
): Promise<{ afterMs: number; received: string }> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const started = performance.now();
    let received = "";
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearInterval(timer);
      resolve({ afterMs: performance.now() - started, received });
    });
    socket.on("connect", () => {
      if (first.length > 0) socket.write(first);
      timer = setInterval(() => {
        if (socket.destroyed || socket.writableEnded) return;
        if (i < trickled.length) socket.write(trickled.subarray(i, i + 1));
        else if (filler) socket.write(filler);
        i++;
      }, paceMs);
    });
  });
}

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
// An empty SETTINGS frame, then a HEADERS frame (stream 1, END_HEADERS) for POST / with static-table fields.
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const HEADERS_BLOCK = Buffer.from([0x83, 0x84, 0x86, 0x41, 0x01, 0x78]);
const HEADERS_FRAME = Buffer.concat([
  Buffer.from([0, 0, HEADERS_BLOCK.length, 1, 0x04, 0, 0, 0, 1]),
  HEADERS_BLOCK,
]);

/** Opens an HTTP/2 stream that sends one byte of body every `paceMs` and never ends; resolves when the server ends it. */
function trickleH2Body(port: number, paceMs: number): Promise<{ afterMs: number; rstCode: number }> {
  return new Promise((resolve) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", () => {});
    const stream = session.request({ ":method": "POST", ":path": "/slow" }, { endStream: false });
    const started = performance.now();
    stream.on("error", () => {});
    stream.resume();
    const timer = setInterval(() => {
      if (!stream.destroyed && !stream.closed) stream.write("x");
    }, paceMs);
    stream.on("close", () => {
      clearInterval(timer);
      resolve({ afterMs: performance.now() - started, rstCode: stream.rstCode ?? -1 });
      session.destroy();
    });
  });
}

describe("HTTP port limits: header size (no Postgres, no Redis)", () => {
  it("answers HTTP/1.1 headers over the limit with 431 and serves headers under it", async () => {
    const big = await sendH1(
      readingPort,
      { path: "/", headers: { "x-big": "a".repeat(5000) }, body: Buffer.alloc(0) },
      5000,
    );
    expect(big.status).toBe(431);
    const fine = await sendH1(
      readingPort,
      { path: "/", headers: { "x-big": "a".repeat(3000) }, body: Buffer.alloc(0) },
      5000,
    );
    expect(fine.status).toBe(200);
  });

  it("resets an HTTP/2 stream whose header list is over the limit with ENHANCE_YOUR_CALM and serves one under it", async () => {
    const big = await rawH2Request(readingPort, { path: "/", headers: [["x-big", "a".repeat(5000)]] });
    expect(big.find((f) => f.streamId === 1)).toMatchObject({ type: FRAME.RST_STREAM });
    expect(big.find((f) => f.type === FRAME.RST_STREAM)?.payload.readUInt32BE(0)).toBe(
      http2.constants.NGHTTP2_ENHANCE_YOUR_CALM,
    );
    const fine = await rawH2Request(readingPort, { path: "/", headers: [["x-big", "a".repeat(3000)]] });
    expect(fine.find((f) => f.streamId === 1)).toMatchObject({ type: FRAME.HEADERS });
  });
});

describe("HTTP port limits: timeouts (no Postgres, no Redis)", () => {
  it("answers an HTTP/1.1 request that declares 5 MB and sends nothing with 408 and closes it within the request timeout", async () => {
    const head = Buffer.from("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n", "latin1");
    const { afterMs, received } = await trickle(readingPort, head, Buffer.alloc(0), 60_000);
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
    expect(afterMs).toBeGreaterThanOrEqual(limits.requestTimeoutMs - 50);
    expect(afterMs).toBeLessThan(limits.requestTimeoutMs + SLACK_MS);
  });

  it("closes an idle HTTP/1.1 keep-alive connection and an HTTP/2 session without streams after the idle timeout", async () => {
    const h1 = await trickle(
      readingPort,
      Buffer.from("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "latin1"),
      Buffer.alloc(0),
      1000,
    );
    expect(h1.received).toMatch(/^HTTP\/1\.1 200 /);
    // Node closes a keep-alive connection one second after the timeout it announces, for clients that reuse late.
    expect(h1.afterMs).toBeLessThan(limits.idleTimeoutMs + 1000 + SLACK_MS);
    const session = http2.connect(`http://127.0.0.1:${readingPort}`);
    const closed = new Promise<number>((resolve) => {
      const started = performance.now();
      session.on("close", () => resolve(performance.now() - started));
    });
    session.on("error", () => {});
    const stream = session.request({ ":path": "/" });
    stream.resume();
    stream.end();
    await new Promise((resolve) => stream.on("close", resolve));
    expect(await closed).toBeLessThan(limits.idleTimeoutMs + SLACK_MS);
  });

  it("ends the upload of a request answered before it was read: HTTP/2 resets the stream with NO_ERROR, HTTP/1.1 closes", async () => {
    const upload = { chunk: Buffer.alloc(64 * 1024), size: 200 * 1024 * 1024 };
    const h2 = await sendH2(refusingPort, { path: "/", headers: {}, body: upload }, 10_000);
    expect(h2).toMatchObject({ status: 413, end: "response", rstCode: http2.constants.NGHTTP2_NO_ERROR });
    expect(h2.body.toString()).toBe("no");
    expect(h2.bytesWritten).toBeLessThan(16 * 1024 * 1024);
    const h1 = await uploadUntilClosed(refusingPort, "/", {}, 200 * 1024 * 1024);
    expect(h1.response).toMatch(/^HTTP\/1\.1 413 [\s\S]*\r\n\r\n(2\r\n)?no\r\n/);
    // The client is told not to reuse the connection, and the server closes it after the linger.
    expect(h1.response).toMatch(/\r\nconnection: close\r\n/i);
    expect(h1.closedAfterResponseMs).toBeLessThan(EARLY_RESPONSE_LINGER_MS + SLACK_MS);
    expect(h1.bytesWritten).toBeLessThan(200 * 1024 * 1024);
  });

  it("cuts off every slow client, HTTP/1.1 or h2c, trickling headers or body, within its timeout (property)", async () => {
    const slow = fc.record({
      protocol: fc.constantFrom("h1", "h2c-preface", "h2c-headers", "h2c-body"),
      phase: fc.constantFrom("headers", "body"),
      paceMs: fc.integer({ min: 5, max: 120 }),
      declared: fc.integer({ min: 1, max: 50_000_000 }),
      cut: fc.nat(),
    });
    await fc.assert(
      fc.asyncProperty(slow, async ({ protocol, phase, paceMs, declared, cut }) => {
        let afterMs: number;
        let timeoutMs: number;
        if (protocol === "h2c-body") {
          ({ afterMs } = await trickleH2Body(readingPort, paceMs));
          timeoutMs = limits.requestTimeoutMs;
        } else if (protocol === "h2c-preface") {
          const at = cut % PREFACE.length;
          ({ afterMs } = await trickle(
            readingPort,
            PREFACE.subarray(0, at),
            PREFACE.subarray(at, -1),
            paceMs,
          ));
          timeoutMs = limits.headersTimeoutMs;
        } else if (protocol === "h2c-headers") {
          const at = cut % HEADERS_FRAME.length;
          const first = Buffer.concat([PREFACE, SETTINGS, HEADERS_FRAME.subarray(0, at)]);
          ({ afterMs } = await trickle(readingPort, first, HEADERS_FRAME.subarray(at, -1), paceMs));
          timeoutMs = limits.headersTimeoutMs;
        } else if (phase === "headers") {
          const line = Buffer.from(
            `POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared}\r\nX-Pad: `,
            "latin1",
          );
          // Then one more byte of the same header value at a time: the header block never ends, and stays under
          // the size limit for as long as this runs.
          const at = 1 + (cut % (line.length - 1));
          ({ afterMs } = await trickle(readingPort, line.subarray(0, at), line.subarray(at), paceMs, "a"));
          timeoutMs = limits.headersTimeoutMs;
        } else {
          const head = Buffer.from(
            `POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: ${declared + 1_000_000}\r\n\r\n`,
            "latin1",
          );
          ({ afterMs } = await trickle(readingPort, head, Buffer.alloc(0), paceMs, "b"));
          timeoutMs = limits.requestTimeoutMs;
        }
        expect(afterMs).toBeLessThan(timeoutMs + SLACK_MS);
      }),
      { numRuns: 14 },
    );
  }, 60_000);
});
