/**
 * What one request may cost the HTTP port: decompression bombs, oversize and unauthenticated bodies, measured as the
 * resident-set growth of a `keymesh serve` child process. Needs Postgres (global setup); no Redis.
 */
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { brotliBomb, grpcEnvelope, gzipBomb } from "../support/bombs.js";
import {
  type RawOutcome,
  type RawRequest,
  type RpcProtocol,
  rpcCodeOf,
  sendH1,
  sendH2,
  uploadUntilClosed,
} from "../support/raw-client.js";
import { type ServerProcess, startServerProcess } from "../support/server-process.js";

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
/** The bound the issue sets on what any one request (or three at once) may add to the server's resident set. */
const MAX_GROWTH = 64 * MiB;

let server: ServerProcess;
let bombs: { gzip1G: Buffer; gzip64M: Buffer; br1G: Buffer; br64M: Buffer };

beforeAll(async () => {
  [server, bombs] = await Promise.all([
    startServerProcess(),
    (async () => ({
      gzip1G: await gzipBomb(GiB),
      gzip64M: await gzipBomb(64 * MiB),
      br1G: await brotliBomb(GiB),
      br64M: await brotliBomb(64 * MiB),
    }))(),
  ]);
  // Warm up: the first admin calls compile and allocate what every later call reuses.
  const admin = createClient(
    KeyAdmin,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${server.httpPort}`,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${server.rootKey}`);
          return next(req);
        },
      ],
    }),
  );
  for (let i = 0; i < 5; i++) await admin.listKeySpaces({});
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** Runs `attack` and reports how far the server's resident set rose above where it stood before. */
async function growthDuring<T>(attack: () => Promise<T>): Promise<{ result: T; growth: number }> {
  server.resetPeak();
  const before = server.memory().rss;
  const result = await attack();
  const growth = server.memory().peak - before;
  return { result, growth };
}

const KEY_ADMIN = `/${KeyAdmin.typeName}/CreateKeySpace`;

function connectBomb(bomb: Buffer, authorization?: string): RawRequest {
  return {
    path: KEY_ADMIN,
    headers: {
      "content-type": "application/json",
      "content-encoding": "gzip",
      "content-length": String(bomb.length),
      ...(authorization ? { authorization } : {}),
    },
    body: bomb,
  };
}

describe("HTTP port: what a request may cost (needs Postgres)", () => {
  it("refuses a 1 MiB gzip body inflating to 1 GiB, sent without credentials to KeyAdmin, with 401 and bounded memory", async () => {
    expect(bombs.gzip1G.length).toBeLessThan(1.1 * MiB);
    const { result, growth } = await growthDuring(() =>
      Promise.all([
        sendH1(server.httpPort, connectBomb(bombs.gzip1G), 15_000),
        // The second case: three at once.
        sendH1(server.httpPort, connectBomb(bombs.gzip1G), 15_000),
        sendH2(server.httpPort, connectBomb(bombs.gzip1G), 15_000),
      ]),
    );
    for (const outcome of result) {
      expect(outcome.status).toBe(401);
      expect(rpcCodeOf("connect", outcome)).toBe("unauthenticated");
    }
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("refuses the same bomb with a valid root key as resource_exhausted, with bounded memory", async () => {
    const { result, growth } = await growthDuring(() =>
      Promise.all(
        [0, 1, 2].map(() =>
          sendH1(server.httpPort, connectBomb(bombs.gzip1G, `Bearer ${server.rootKey}`), 15_000),
        ),
      ),
    );
    for (const outcome of result) {
      expect(outcome.status).toBeGreaterThanOrEqual(400);
      expect(outcome.status).toBeLessThan(500);
      expect(["resource_exhausted", "invalid_argument"]).toContain(rpcCodeOf("connect", outcome));
    }
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("refuses a 200 MiB plain body without credentials before reading it, and closes the connection", async () => {
    const size = 200 * MiB;
    const { result, growth } = await growthDuring(async () => ({
      h1: await uploadUntilClosed(server.httpPort, KEY_ADMIN, { "content-type": "application/json" }, size),
      h2: await sendH2(
        server.httpPort,
        {
          path: KEY_ADMIN,
          headers: { "content-type": "application/json", "content-length": String(size) },
          body: { chunk: Buffer.alloc(64 * 1024), size },
        },
        15_000,
      ),
    }));
    expect(result.h1.response).toMatch(/^HTTP\/1\.1 401 /);
    expect(result.h1.response).toMatch(/\r\nconnection: close\r\n/i);
    expect(result.h1.closedAfterResponseMs).toBeLessThan(3000);
    expect(result.h2).toMatchObject({ status: 401, end: "response" });
    // The answer came while the upload had hardly begun: the server did not wait for the body.
    expect(result.h2.bytesWritten).toBeLessThan(size / 4);
    expect(growth).toBeLessThan(MAX_GROWTH);
  });

  it("answers every oversize or compressed-bomb request with a 4xx refusal and bounded memory (property)", async () => {
    const attack = fc.record({
      target: fc.constantFrom("admin", "verify"),
      credential: fc.constantFrom("none", "garbage", "tampered", "root"),
      protocol: fc.constantFrom<RpcProtocol>("connect", "grpc", "grpc-web"),
      binary: fc.boolean(),
      http2: fc.boolean(),
      payload: fc.constantFrom("plain-2M", "gzip-64M", "gzip-1G", "br-64M", "br-1G"),
      declared: fc.constantFrom("none", "exact", "200M"),
    });
    await fc.assert(
      fc.asyncProperty(attack, async (a) => {
        const encoding = a.payload.split("-")[0] as "plain" | "gzip" | "br";
        const raw =
          a.payload === "plain-2M"
            ? Buffer.alloc(2 * MiB)
            : {
                "gzip-64M": bombs.gzip64M,
                "gzip-1G": bombs.gzip1G,
                "br-64M": bombs.br64M,
                "br-1G": bombs.br1G,
              }[a.payload];
        const useH2 = a.protocol === "grpc" || a.http2;
        const headers: Record<string, string> = {};
        let body = raw;
        if (a.protocol === "connect") {
          headers["content-type"] = a.binary ? "application/proto" : "application/json";
          if (encoding !== "plain") headers["content-encoding"] = encoding;
        } else {
          headers["content-type"] = `application/${a.protocol}+${a.binary ? "proto" : "json"}`;
          if (encoding !== "plain") headers["grpc-encoding"] = encoding;
          body = grpcEnvelope(raw, encoding !== "plain");
        }
        if (a.protocol === "grpc") headers.te = "trailers";
        if (a.declared !== "none")
          headers["content-length"] = String(a.declared === "exact" ? body.length : 200 * MiB);
        const key =
          a.credential === "root"
            ? server.rootKey
            : a.credential === "tampered"
              ? `${server.rootKey.slice(0, -1)}${server.rootKey.endsWith("A") ? "B" : "A"}`
              : "not-a-key";
        if (a.credential !== "none") headers.authorization = `Bearer ${key}`;
        const request: RawRequest = {
          path: a.target === "admin" ? KEY_ADMIN : "/keymesh.v1.KeyVerify/Verify",
          headers,
          body,
          // A body shorter than its declared length never ends; the answer must not wait for the rest.
          stall: a.declared === "200M",
        };
        const { result: outcome, growth } = await growthDuring(
          (): Promise<RawOutcome> =>
            useH2 ? sendH2(server.httpPort, request, 15_000) : sendH1(server.httpPort, request, 15_000),
        );
        expect(growth).toBeLessThan(MAX_GROWTH);
        const code = rpcCodeOf(a.protocol, outcome);
        if (a.target === "admin" && a.credential !== "root") expect(code).toBe("unauthenticated");
        else expect(["resource_exhausted", "invalid_argument"]).toContain(code);
        if (a.protocol === "connect") {
          expect(outcome.status).toBeGreaterThanOrEqual(400);
          expect(outcome.status).toBeLessThan(500);
        }
        expect(server.hasExited()).toBe(false);
      }),
      { numRuns: 60 },
    );
  }, 240_000);
});
