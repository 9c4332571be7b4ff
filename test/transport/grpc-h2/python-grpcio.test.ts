/**
 * The node:http2 gRPC server called by an independent implementation: Debian's python3-grpcio (C core), with the
 * official Envoy protos compiled by protoc from @grpc/grpc-js-xds's copies. Needs the Debian packages
 * python3-grpcio, python3-protobuf and protobuf-compiler (.ci/run installs them); no Postgres, no Redis.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./serve.js";

const run = promisify(execFile);
// The python3 on PATH may be a pyenv shim without grpc; Debian's packages live under /usr/bin/python3.
const PYTHON = "/usr/bin/python3";
const DEPS = "node_modules/@grpc/grpc-js-xds/deps";

let server: TestServer;
let dir: string;
let descriptorSet: string;

beforeAll(async () => {
  server = await startTestServer({ maxReceiveBytes: 64 * 1024 });
  dir = await mkdtemp(path.join(os.tmpdir(), "keymesh-protoc-"));
  descriptorSet = path.join(dir, "envoy.pb");
  await run("protoc", [
    ...["envoy-api", "googleapis", "protoc-gen-validate", "xds"].map((d) => `-I${DEPS}/${d}`),
    "--include_imports",
    `--descriptor_set_out=${descriptorSet}`,
    "envoy/service/auth/v3/external_auth.proto",
  ]);
});

afterAll(async () => {
  await server?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A CheckResponse in proto3 JSON, as python's json_format writes it. */
interface CheckJson {
  status?: { code?: number };
  okResponse?: { headers: { header: { key: string; value: string } }[] };
  deniedResponse?: object;
}
type Outcome = { ok: true; response: CheckJson } | { ok: false; code: string; details?: string };

describe("Check called by python3-grpcio with protoc-compiled Envoy protos", () => {
  it("gets decisions, reads gzip and deflate, and the protocol's errors for size, unknown method and deadline", async () => {
    const { stdout } = await run(PYTHON, [
      path.join(import.meta.dirname, "envoy_check_client.py"),
      String(server.port),
      descriptorSet,
    ]);
    const out = JSON.parse(stdout) as Record<string, Outcome>;
    const allow = out.allow as Extract<Outcome, { ok: true }>;
    expect(allow.ok).toBe(true);
    // proto3 JSON leaves out a zero status code; an allow carries ok_response with the identity headers.
    expect(allow.response.status?.code ?? 0).toBe(0);
    const headers = allow.response.okResponse?.headers ?? [];
    expect(headers.find((h) => h.header.key === "x-keymesh-key-id")?.header.value).toBe("key_1");
    const expired = out.expired as Extract<Outcome, { ok: true }>;
    expect(expired.response.status?.code).toBe(16);
    expect(expired.response.deniedResponse).toBeDefined();
    for (const name of ["gzip", "deflate"]) {
      expect(out[name]).toMatchObject({ ok: true, response: { okResponse: {} } });
    }
    expect(out.oversize).toMatchObject({ ok: false, code: "RESOURCE_EXHAUSTED" });
    expect(out.unknown).toMatchObject({ ok: false, code: "UNIMPLEMENTED" });
    expect(out.deadline).toMatchObject({ ok: false, code: "DEADLINE_EXCEEDED" });
  }, 60_000);
});
