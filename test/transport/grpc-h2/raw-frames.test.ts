/**
 * The node:http2 gRPC server against requests no conforming client sends, written as raw HTTP/2 (node:http2's
 * client for requests it can express, a socket for frames it cannot). Generated malformed requests and frames
 * (fast-check) must never crash the server and always get a valid gRPC error or decision. No Postgres, no Redis.
 */
import zlib from "node:zlib";
import { fromBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CheckResponseSchema } from "../../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { decodeGrpcMessage, parseTimeout } from "../../../src/transport/grpc-h2/protocol.js";
import { grpcEnvelope } from "../../support/bombs.js";
import { FRAME, rawH2Request } from "../../support/raw-h2.js";
import { CHECK, checkRequestBytes, frame, grpcStatus, h2Call, rawExchange } from "./h2-call.js";
import { startTestServer, type TestServer } from "./serve.js";

const MAX = 64 * 1024;
let server: TestServer;

beforeAll(async () => {
  server = await startTestServer({ maxReceiveBytes: MAX, maxConcurrentStreams: 100 });
});

afterAll(async () => {
  await server?.close();
});

const GRPC = { "content-type": "application/grpc", te: "trailers" };
const valid = () => grpcEnvelope(checkRequestBytes("allow"), false);
const call = (headers: Record<string, string>, chunks: Buffer[], ending: "end" | "reset" | "stall" = "end") =>
  h2Call(server.port, { headers, chunks, ending });

/** An error answered as the spec asks: one HEADERS frame ending the stream, status in it, no message. */
function expectTrailersOnly(outcome: Awaited<ReturnType<typeof call>>, code: number): void {
  expect(outcome.headers["grpc-status"]).toBe(String(code));
  expect(outcome.body.length).toBe(0);
  expect(outcome.trailers).toEqual({});
}

describe("requests that are not valid gRPC get the protocol's answers", () => {
  it("answers a valid Check with one message and grpc-status 0 in the trailers", async () => {
    const outcome = await call(GRPC, [valid()]);
    expect(outcome.status).toBe(200);
    expect(outcome.headers["grpc-accept-encoding"]).toContain("gzip");
    expect(outcome.trailers["grpc-status"]).toBe("0");
    expect(outcome.body.readUInt32BE(1)).toBe(outcome.body.length - 5);
    expect(fromBinary(CheckResponseSchema, outcome.body.subarray(5)).status?.code).toBe(0);
  });

  it("answers a wrong content-type 415 and a GET 405, each with a gRPC status", async () => {
    const json = await call({ "content-type": "application/json", te: "trailers" }, [valid()]);
    expect(json.status).toBe(415);
    expectTrailersOnly(json, 3);
    const get = await h2Call(server.port, {
      headers: { ...GRPC, ":method": "GET" },
      chunks: [],
      ending: "end",
    });
    expect(get.status).toBe(405);
    expect(get.headers["grpc-status"]).toBe("13");
  });

  it("refuses a call without te: trailers INTERNAL; another te value is a malformed request, reset by HTTP/2", async () => {
    expectTrailersOnly(await call({ "content-type": "application/grpc" }, [valid()]), 13);
    const frames = await rawH2Request(server.port, {
      path: CHECK,
      headers: [
        ["content-type", "application/grpc"],
        ["te", "gzip"],
      ],
      body: valid(),
    });
    // RFC 9113 §8.2.2: TE other than "trailers" makes the request malformed, a stream error PROTOCOL_ERROR.
    const answer = frames.find((f) => f.streamId === 1);
    expect(answer?.type).toBe(FRAME.RST_STREAM);
    expect(answer?.payload.readUInt32BE(0)).toBe(1);
  });

  it("answers an unknown method UNIMPLEMENTED with a percent-encoded grpc-message", async () => {
    const path = "/no.Such/Méthod%20";
    const outcome = await h2Call(server.port, {
      headers: { ...GRPC, ":path": path },
      chunks: [valid()],
      ending: "end",
    });
    expectTrailersOnly(outcome, 12);
    expect(outcome.headers["grpc-message"]).toMatch(/^[\x20-\x7e]*$/);
    expect(decodeGrpcMessage(outcome.headers["grpc-message"]!)).toBe(`unknown method ${path}`);
  });

  it("answers a malformed grpc-timeout INTERNAL and enforces a valid one with DEADLINE_EXCEEDED", async () => {
    for (const timeout of ["", "1", "10x", "123456789S", "-5m", "1.5S"]) {
      expectTrailersOnly(await call({ ...GRPC, "grpc-timeout": timeout }, [valid()]), 13);
    }
    const stalled = await call({ ...GRPC, "grpc-timeout": "200m" }, [valid().subarray(0, 8)], "stall");
    expectTrailersOnly(stalled, 4);
    expect(stalled.elapsedMs).toBeGreaterThanOrEqual(150);
    expect(stalled.elapsedMs).toBeLessThan(1500);
  });

  it("treats a grpc-timeout beyond a timer's reach as no deadline, on Check and on health alike", async () => {
    // 99999999 hours is valid gRPC; a timer that long overflows Node's and would fire at once.
    for (const timeout of ["99999999H", "99999999M", "3000000S"]) {
      const answered = await call({ ...GRPC, "grpc-timeout": timeout }, [valid()]);
      expect(answered.trailers["grpc-status"]).toBe("0");
    }
  });

  it("answers a health call whose message cannot be read with a status in its trailers, not a stream reset", async () => {
    const compressedWithoutEncoding = Buffer.concat([Buffer.from([1, 0, 0, 0, 3]), Buffer.from("bad")]);
    const outcome = await call({ ...GRPC, ":path": "/grpc.health.v1.Health/Check" }, [
      compressedWithoutEncoding,
    ]);
    expect(outcome.unanswered).toBe(false);
    expect(outcome.rstCode).toBeUndefined();
    expect(grpcStatus(outcome)).toBe(13);
  });

  it("answers a health call that never finishes its message DEADLINE_EXCEEDED at its deadline", async () => {
    const stalled = await call(
      { ...GRPC, ":path": "/grpc.health.v1.Health/Check", "grpc-timeout": "200m" },
      [],
      "stall",
    );
    expectTrailersOnly(stalled, 4);
    expect(stalled.elapsedMs).toBeGreaterThanOrEqual(150);
    expect(stalled.elapsedMs).toBeLessThan(1500);
  });

  it("answers an unsupported grpc-encoding UNIMPLEMENTED, advertising the encodings it accepts", async () => {
    const outcome = await call({ ...GRPC, "grpc-encoding": "br" }, [valid()]);
    expectTrailersOnly(outcome, 12);
    expect(outcome.headers["grpc-accept-encoding"]).toBe("identity,deflate,gzip");
  });

  it("reads gzip and refuses a compressed flag without an encoding, bad gzip and an unknown flag INTERNAL", async () => {
    const gz = grpcEnvelope(zlib.gzipSync(checkRequestBytes("allow")), true);
    expect((await call({ ...GRPC, "grpc-encoding": "gzip" }, [gz])).trailers["grpc-status"]).toBe("0");
    expectTrailersOnly(await call(GRPC, [gz]), 13);
    const bad = grpcEnvelope(Buffer.from("not gzip at all"), true);
    expectTrailersOnly(await call({ ...GRPC, "grpc-encoding": "gzip" }, [bad]), 13);
    expectTrailersOnly(await call(GRPC, [grpcEnvelope(checkRequestBytes("allow"), false, 4)]), 13);
  });

  it("answers an oversize length prefix RESOURCE_EXHAUSTED before the body arrives", async () => {
    const head = Buffer.from([0, 0, 0, 0, 0]);
    head.writeUInt32BE(MAX + 1, 1);
    expectTrailersOnly(await call(GRPC, [head], "stall"), 8);
    const bomb = grpcEnvelope(zlib.gzipSync(Buffer.alloc(10 * MAX)), true);
    expectTrailersOnly(await call({ ...GRPC, "grpc-encoding": "gzip" }, [bomb], "stall"), 8);
  });

  it("refuses a call with no message, a truncated one, or two messages INTERNAL", async () => {
    expectTrailersOnly(await call(GRPC, []), 13);
    expectTrailersOnly(await call(GRPC, [valid().subarray(0, 10)]), 13);
    expectTrailersOnly(await call(GRPC, [valid(), valid()]), 13);
  });

  it("never reaches the authorizer for a call reset in the middle of its message", async () => {
    const seen = server.authorizer.seen.length;
    const outcome = await call(GRPC, [valid().subarray(0, 12)], "reset");
    expect(outcome.unanswered).toBe(true);
    await new Promise((r) => setTimeout(r, 50));
    expect(server.authorizer.seen.length).toBe(seen);
  });
});

describe("connection limits, keepalive and shutdown, as raw frames", () => {
  it("advertises its stream and header-list limits and resets a header list over the limit", async () => {
    const { frames } = await rawExchange(server.port, Buffer.alloc(0), { waitMs: 200 });
    const settings = frames.find((f) => f.type === FRAME.SETTINGS && (f.flags & 1) === 0)!;
    const values = new Map<number, number>();
    for (let i = 0; i + 6 <= settings.payload.length; i += 6) {
      values.set(settings.payload.readUInt16BE(i), settings.payload.readUInt32BE(i + 2));
    }
    expect(values.get(3)).toBe(100);
    expect(values.get(6)).toBe(16 * 1024);
    const big = await rawH2Request(server.port, {
      path: CHECK,
      headers: [...Object.entries(GRPC), ["x-big", "a".repeat(17_000)]],
    });
    const reset = big.find((f) => f.streamId === 1);
    expect(reset?.type).toBe(FRAME.RST_STREAM);
    expect(reset?.payload.readUInt32BE(0)).toBe(11);
  });

  it("pings an idle peer and drops it when the ping goes unanswered, keeping one that answers", async () => {
    const own = await startTestServer({ keepaliveTimeMs: 100, keepaliveTimeoutMs: 150 });
    try {
      const [silent, live] = await Promise.all([
        rawExchange(own.port, Buffer.alloc(0), { waitMs: 2000 }),
        rawExchange(own.port, Buffer.alloc(0), { waitMs: 800, ackPings: true }),
      ]);
      expect(silent.frames.some((f) => f.type === 6)).toBe(true);
      expect(silent.closed).toBe(true);
      expect(silent.elapsedMs).toBeLessThan(1500);
      expect(live.frames.filter((f) => f.type === 6).length).toBeGreaterThanOrEqual(3);
      expect(live.closed).toBe(false);
    } finally {
      await own.close();
    }
  });

  it("sends GOAWAY to open connections when the listener closes", async () => {
    const own = await startTestServer();
    const exchange = rawExchange(own.port, Buffer.alloc(0), { waitMs: 2000 });
    await new Promise((r) => setTimeout(r, 100));
    await own.listener.close(500);
    const { frames } = await exchange;
    expect(frames.some((f) => f.type === FRAME.GOAWAY)).toBe(true);
  });
});

const chunkArb = fc.oneof(
  fc.constant(valid()),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  // A prefix announcing any length (over the limit, or more than follows), then a few bytes.
  fc
    .tuple(fc.integer({ min: 0, max: 255 }), fc.nat(), fc.uint8Array({ maxLength: 20 }))
    .map(([flag, len, rest]) => {
      const head = Buffer.alloc(5);
      head[0] = flag;
      head.writeUInt32BE(len >>> 0, 1);
      return Buffer.concat([head, Buffer.from(rest)]);
    }),
  fc.constant(grpcEnvelope(zlib.gzipSync(checkRequestBytes("allow")), true)),
  fc.constant(grpcEnvelope(Buffer.from("\x1f\x8b garbage"), true)),
  fc.constant(grpcEnvelope(zlib.gzipSync(Buffer.alloc(4 * MAX)), true)),
);

const requestArb = fc.record({
  contentType: fc.option(
    fc.constantFrom(
      "application/grpc",
      "application/grpc+proto",
      "application/grpc+json",
      "text/plain",
      "application/grpcx",
    ),
    { nil: undefined },
  ),
  te: fc.boolean(),
  path: fc.constantFrom(CHECK, "/keymesh.v1.KeyVerify/Verify", "/grpc.health.v1.Health/Check", "/x/y", "/"),
  timeout: fc.option(
    fc.oneof(fc.constantFrom("50m", "1S", "0n", "99999999H"), fc.stringMatching(/^[0-9a-zA-Z.-]{0,10}$/)),
    { nil: undefined },
  ),
  encoding: fc.option(fc.constantFrom("identity", "gzip", "deflate", "br", "snappy"), { nil: undefined }),
  chunks: fc.array(chunkArb, { maxLength: 3 }),
  ending: fc.constantFrom("end" as const, "end" as const, "reset" as const, "stall" as const),
});

describe("generated malformed requests and frames (property)", () => {
  it("answers every generated request with a valid gRPC status, a decision for Check, or nothing only if the client left", async () => {
    await fc.assert(
      fc.asyncProperty(requestArb, async (r) => {
        const headers: Record<string, string> = { ":path": r.path };
        if (r.contentType) headers["content-type"] = r.contentType;
        if (r.te) headers.te = "trailers";
        if (r.timeout !== undefined) headers["grpc-timeout"] = r.timeout;
        if (r.encoding) headers["grpc-encoding"] = r.encoding;
        // A finished or reset call is answered at once, so its wait only bounds a loaded machine. A stalled call
        // with a near deadline (< 800 ms) must be answered by it, with time to spare; any other stalled call may
        // go unanswered, so it is not waited for long.
        const deadline = parseTimeout(r.timeout);
        const near = deadline !== undefined && deadline < 800;
        const waitMs = r.ending !== "stall" ? 10_000 : near ? deadline + 2_000 : 300;
        const outcome = await h2Call(server.port, { headers, chunks: r.chunks, ending: r.ending }, waitMs);
        if (outcome.unanswered) {
          // Only a client that reset its call, or one still sending without a near deadline, may go unanswered.
          expect(
            r.ending === "reset" || (r.ending === "stall" && !near && outcome.rstCode === undefined),
          ).toBe(true);
          return;
        }
        expect([200, 405, 415]).toContain(outcome.status);
        const code = grpcStatus(outcome);
        expect(Number.isInteger(code) && code! >= 0 && code! <= 16).toBe(true);
        if (code === 0 && r.path === CHECK) {
          expect(outcome.body.readUInt32BE(1)).toBe(outcome.body.length - 5);
          fromBinary(CheckResponseSchema, outcome.body.subarray(5));
        }
        if (code !== 0 && outcome.status === 200 && r.path !== "/grpc.health.v1.Health/Check") {
          expect(outcome.body.length).toBe(0);
        }
      }),
      { numRuns: 150 },
    );
    expect((await call(GRPC, [valid()])).trailers["grpc-status"]).toBe("0");
  }, 300_000);

  it("survives generated HTTP/2 frames, writing only whole frames back, and still answers a Check", async () => {
    const frameArb = fc
      .record({
        type: fc.integer({ min: 0, max: 12 }),
        flags: fc.integer({ min: 0, max: 255 }),
        streamId: fc.constantFrom(0, 1, 2, 3, 5, 0x7fffffff),
        payload: fc.uint8Array({ maxLength: 48 }),
        lie: fc.option(fc.integer({ min: 0, max: 70_000 }), { freq: 5, nil: undefined }),
      })
      .map((f) => {
        const bytes = frame(f.type, f.flags, f.streamId, Buffer.from(f.payload));
        if (f.lie !== undefined) bytes.writeUIntBE(f.lie, 0, 3);
        return bytes;
      });
    await fc.assert(
      fc.asyncProperty(fc.array(frameArb, { minLength: 1, maxLength: 5 }), async (frames) => {
        const result = await rawExchange(server.port, Buffer.concat(frames), { waitMs: 80 });
        expect(result.garbage).toBe(false);
      }),
      { numRuns: 80 },
    );
    expect((await call(GRPC, [valid()])).trailers["grpc-status"]).toBe("0");
  }, 120_000);
});
