/**
 * The node:http2 gRPC server driven by h2load (nghttp2's load generator, an HTTP/2 implementation of its own):
 * thousands of Checks over several connections with many streams each, every one answered 200 and allowed. Needs
 * h2load (Debian: nghttp2-client, installed by .ci/run); no Postgres, no Redis.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grpcEnvelope } from "../../support/bombs.js";
import { CHECK, checkRequestBytes } from "./h2-call.js";
import { startTestServer, type TestServer } from "./serve.js";

const run = promisify(execFile);
let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer();
  dir = await mkdtemp(path.join(os.tmpdir(), "keymesh-h2load-"));
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("Check under h2load", () => {
  it("answers 4,000 Checks on 4 connections × 32 streams, every one 200 and an allow decision", async () => {
    const data = path.join(dir, "check.bin");
    await writeFile(data, grpcEnvelope(checkRequestBytes("allow"), false));
    const before = { ...server.counters };
    const requests = 4000;
    const { stdout } = await run("h2load", [
      ...["-n", String(requests), "-c", "4", "-m", "32", "-t", "1"],
      ...["-d", data, "-H", "content-type: application/grpc", "-H", "te: trailers"],
      `http://127.0.0.1:${server.port}${CHECK}`,
    ]);
    expect(stdout).toMatch(
      new RegExp(
        `requests: ${requests} total, ${requests} started, ${requests} done, ${requests} succeeded, 0 failed, 0 errored`,
      ),
    );
    expect(stdout).toMatch(new RegExp(`status codes: ${requests} 2xx, 0 3xx, 0 4xx, 0 5xx`));
    // h2load does not read trailers; the server's own counters show each call reached an allow.
    expect(server.counters.allow - before.allow).toBe(requests);
    expect(server.counters.deny + server.counters.error).toBe(before.deny + before.error);
  }, 60_000);
});
