/**
 * What one call may cost the gRPC port (node:http2: Envoy Check and KeyVerify): message and metadata size, compressed
 * bombs, idle and slow connections, measured on a `keymesh serve` child process. Needs Postgres; no Redis.
 */
import net from "node:net";
import zlib from "node:zlib";
import type { ServiceError } from "@grpc/grpc-js";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEFAULT_GRPC_H2_LIMITS } from "../../../src/transport/grpc-h2/server.js";
import { grpcEnvelope, gzipBomb } from "../../support/bombs.js";
import { createEnvoyClient } from "../../support/envoy-client.js";
import { type RawOutcome, sendH2 } from "../../support/raw-client.js";
import { FRAME, rawH2Request } from "../../support/raw-h2.js";
import { type ServerProcess, startServerProcess } from "../../support/server-process.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const MAX_GROWTH = 64 * MiB;
const CHECK = "/envoy.service.auth.v3.Authorization/Check";
const VERIFY = "/keymesh.v1.KeyVerify/Verify";
// Short enough to watch in a test; the defaults are documented in docs/security.md.
const IDLE_MS = 1000;
const SLACK_MS = 1500;

let server: ServerProcess;
let gzip1G: Buffer;

beforeAll(async () => {
  [server, gzip1G] = await Promise.all([
    startServerProcess({ KEYMESH_GRPC_IDLE_TIMEOUT_MS: String(IDLE_MS) }),
    gzipBomb(GiB),
  ]);
  // Warm up the Check path before measuring.
  const envoy = createEnvoyClient(`127.0.0.1:${server.grpcPort}`);
  for (let i = 0; i < 5; i++) await envoy.check({ path: "/warm" });
  envoy.close();
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

async function growthDuring<T>(attack: () => Promise<T>): Promise<{ result: T; growth: number }> {
  server.resetPeak();
  const before = server.memory().rss;
  const result = await attack();
  return { result, growth: server.memory().peak - before };
}

function grpcCall(path: string, body: Buffer, encoding?: string): Promise<RawOutcome> {
  const headers: Record<string, string> = { "content-type": "application/grpc", te: "trailers" };
  if (encoding) headers["grpc-encoding"] = encoding;
  return sendH2(server.grpcPort, { path, headers, body }, 15_000);
}

const status = (outcome: RawOutcome) => outcome.trailers["grpc-status"] ?? outcome.headers["grpc-status"];

describe("gRPC port: what a call may cost (needs Postgres)", () => {
  it("answers a Check over the message limit RESOURCE_EXHAUSTED, plain or gzip-compressed, and keeps serving", async () => {
    const { result, growth } = await growthDuring(async () => ({
      plain: await grpcCall(CHECK, grpcEnvelope(Buffer.alloc(5 * MiB), false)),
      gzip: await grpcCall(CHECK, grpcEnvelope(gzip1G, true), "gzip"),
      verifyGzip: await grpcCall(VERIFY, grpcEnvelope(gzip1G, true), "gzip"),
    }));
    expect(status(result.plain)).toBe("8");
    expect(status(result.gzip)).toBe("8");
    expect(status(result.verifyGzip)).toBe("8");
    expect(growth).toBeLessThan(MAX_GROWTH);
    // The limit leaves room for what Envoy sends with `with_request_body`, and the server is still up.
    const envoy = createEnvoyClient(`127.0.0.1:${server.grpcPort}`);
    try {
      const answer = await envoy.check({ method: "POST", path: "/upload", body: "x".repeat(2 * MiB) });
      expect(answer.status?.code).toBe(16);
      const tooBig = await envoy
        .check({ method: "POST", path: "/upload", body: "x".repeat(5 * MiB) })
        .catch((e) => e);
      expect((tooBig as ServiceError).code).toBe(8);
    } finally {
      envoy.close();
    }
  });

  it("answers every oversize or bomb message to Check and Verify RESOURCE_EXHAUSTED with bounded memory (property)", async () => {
    const bombs = { gzip: gzip1G, deflate: zlib.deflateSync(Buffer.alloc(64 * MiB), { level: 9 }) };
    const call = fc.record({
      path: fc.constantFrom(CHECK, VERIFY),
      encoding: fc.constantFrom("identity", "gzip", "deflate"),
      // identity: a message over the 4 MiB default, sent whole or only its length prefix with a few bytes.
      plainSize: fc.integer({ min: 4 * MiB + 1, max: 8 * MiB }),
      wholeBody: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(call, async (c) => {
        let body: Buffer;
        if (c.encoding === "identity") {
          const envelope = grpcEnvelope(Buffer.alloc(c.plainSize), false);
          body = c.wholeBody ? envelope : envelope.subarray(0, 5 + 1024);
        } else {
          body = grpcEnvelope(bombs[c.encoding], true);
        }
        const { result, growth } = await growthDuring(() =>
          sendH2(
            server.grpcPort,
            {
              path: c.path,
              headers: {
                "content-type": "application/grpc",
                te: "trailers",
                ...(c.encoding === "identity" ? {} : { "grpc-encoding": c.encoding }),
              },
              body,
              stall: !c.wholeBody,
            },
            15_000,
          ),
        );
        expect(status(result)).toBe("8");
        expect(growth).toBeLessThan(MAX_GROWTH);
        expect(server.hasExited()).toBe(false);
      }),
      { numRuns: 30 },
    );
  }, 240_000);

  it("resets a call whose metadata is over 16 KiB with ENHANCE_YOUR_CALM and serves one under it", async () => {
    const grpc: [string, string][] = [
      ["content-type", "application/grpc"],
      ["te", "trailers"],
    ];
    const big = await rawH2Request(server.grpcPort, {
      path: CHECK,
      headers: [...grpc, ["x-big", "a".repeat(17_000)]],
    });
    const reset = big.find((f) => f.streamId === 1);
    expect(reset?.type).toBe(FRAME.RST_STREAM);
    expect(reset?.payload.readUInt32BE(0)).toBe(11);
    const fine = await rawH2Request(server.grpcPort, {
      path: CHECK,
      headers: [...grpc, ["x-big", "a".repeat(8_000)]],
      body: grpcEnvelope(Buffer.alloc(0), false),
    });
    expect(fine.find((f) => f.streamId === 1)?.type).toBe(FRAME.HEADERS);
  });

  it("closes a connection left idle, and one trickling a HEADERS frame byte by byte, after the idle timeout", async () => {
    const preface = Buffer.concat([
      Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1"),
      Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]),
    ]);
    // A valid HEADERS frame (stream 1, END_HEADERS | PADDED) whose 97 bytes arrive one per 50 ms: the stream would
    // open only after about 5 s, and until then the connection has no call in progress.
    const block = Buffer.from([0x83, 0x86, 0x84, 0x41, 0x01, 0x78]);
    const payload = Buffer.concat([Buffer.from([90]), block, Buffer.alloc(90)]);
    const trickled = Buffer.concat([Buffer.from([0, 0, payload.length, 1, 0x0c, 0, 0, 0, 1]), payload]);
    const closedAfter = (trickle: boolean) =>
      new Promise<number>((resolve) => {
        const socket = net.connect(server.grpcPort, "127.0.0.1");
        const started = performance.now();
        let i = 0;
        let timer: NodeJS.Timeout | undefined;
        socket.on("error", () => {});
        // Read (and drop) what the server sends, or its closing of the connection would go unnoticed.
        socket.resume();
        // Still open long after the bound: report that, rather than time the whole test out.
        const giveUp = setTimeout(() => socket.destroy(), 15_000);
        socket.on("close", () => {
          clearTimeout(giveUp);
          clearInterval(timer);
          resolve(performance.now() - started);
        });
        socket.on("connect", () => {
          socket.write(preface);
          if (trickle) {
            timer = setInterval(() => {
              if (i < trickled.length && !socket.destroyed) socket.write(trickled.subarray(i, ++i));
            }, 50);
          }
        });
      });
    const [idle, slow] = await Promise.all([closedAfter(false), closedAfter(true)]);
    expect(idle).toBeLessThan(IDLE_MS + SLACK_MS);
    expect(slow).toBeLessThan(IDLE_MS + DEFAULT_GRPC_H2_LIMITS.closeGraceMs + SLACK_MS);
  });
});
