/**
 * The node:http2 gRPC server against @grpc/grpc-js as the client: Check with the official Envoy protos, KeyVerify,
 * health, reflection, deadlines, cancellation, message size, compression and unknown methods. No Postgres, no Redis.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VerifyCode, VerifyRequestSchema, VerifyResponseSchema } from "../../../gen/keymesh/v1/verify_pb.js";
import { createOfficialEnvoyClient, headerOf } from "../../support/official-envoy-client.js";
import { healthClient, reflectionClient } from "../connect/grpc-clients.js";
import { ECHO_PATH, HANG_PATH, startTestServer, type TestServer } from "./serve.js";

let server: TestServer;
let errorMode: TestServer;
let address: string;

beforeAll(async () => {
  [server, errorMode] = await Promise.all([
    startTestServer({ maxReceiveBytes: 64 * 1024 }),
    startTestServer({}, "error"),
  ]);
  address = `127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await Promise.all([server?.close(), errorMode?.close()]);
});

const raw = (bytes: Buffer) => bytes;

/** A unary call of raw bytes on `path` through a fresh grpc-js client. */
function call(
  path: string,
  request: Uint8Array,
  options: { deadlineMs?: number; channel?: grpc.ChannelOptions; target?: string } = {},
): Promise<Buffer> {
  const client = new grpc.Client(
    options.target ?? address,
    grpc.credentials.createInsecure(),
    options.channel,
  );
  return new Promise<Buffer>((resolve, reject) => {
    client.makeUnaryRequest(
      path,
      (b: Uint8Array) => Buffer.from(b),
      raw,
      request,
      options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {},
      (error, response) => (error ? reject(error) : resolve(response!)),
    );
  }).finally(() => client.close());
}

const codeOf = (error: unknown) => (error as grpc.ServiceError).code;

describe("Check over node:http2, called by grpc-js with the official Envoy protos", () => {
  it("allows with identity headers and denies an expired key with a denied_response", async () => {
    const client = createOfficialEnvoyClient(address);
    try {
      const ok = await client.check({ headers: { authorization: "Bearer allow" } });
      expect(ok.status?.code).toBe(0);
      expect(headerOf(ok.ok_response!.headers, "x-keymesh-key-id")).toBe("key_1");
      const denied = await client.check({ headers: { authorization: "Bearer expired" } });
      expect(denied.status?.code).not.toBe(0);
      expect(denied.denied_response).not.toBeNull();
    } finally {
      client.close();
    }
  });

  it("answers a request that is not a CheckRequest with a denial, not an RPC error", async () => {
    const client = createOfficialEnvoyClient(address);
    try {
      const res = await client.checkRaw(Buffer.from([0xff, 0xff, 0xff]));
      expect(res.status?.code).not.toBe(0);
      expect(res.denied_response).not.toBeNull();
    } finally {
      client.close();
    }
  });

  it("answers a backend failure as gRPC UNAVAILABLE under failure mode error", async () => {
    const client = createOfficialEnvoyClient(`127.0.0.1:${errorMode.port}`);
    try {
      const error = await client.check({ headers: { authorization: "Bearer error" } }).catch((e) => e);
      expect(codeOf(error)).toBe(grpc.status.UNAVAILABLE);
    } finally {
      client.close();
    }
  });

  it("decodes gzip- and deflate-compressed requests", async () => {
    for (const algorithm of [1, 2]) {
      const echoed = await call(ECHO_PATH, Buffer.from("compressed hello".repeat(50)), {
        channel: { "grpc.default_compression_algorithm": algorithm },
      });
      expect(echoed.toString()).toBe("compressed hello".repeat(50));
    }
  });
});

describe("KeyVerify over node:http2, called by grpc-js", () => {
  it("answers VALID with the identity and INVALID_ARGUMENT naming a missing key_space_id", async () => {
    const request = toBinary(
      VerifyRequestSchema,
      create(VerifyRequestSchema, { key: "allow", keySpaceId: "ks" }),
    );
    const response = fromBinary(VerifyResponseSchema, await call("/keymesh.v1.KeyVerify/Verify", request));
    expect(response.code).toBe(VerifyCode.VALID);
    expect(response.identity?.keyId).toBe("key_1");
    const bad = toBinary(VerifyRequestSchema, create(VerifyRequestSchema, { key: "allow" }));
    const error = await call("/keymesh.v1.KeyVerify/Verify", bad).catch((e) => e);
    expect(codeOf(error)).toBe(grpc.status.INVALID_ARGUMENT);
    expect((error as grpc.ServiceError).details).toContain("key_space_id");
  });
});

describe("health and reflection on the same port", () => {
  it("answers Health Check, List and a Watch that the client cancels", async () => {
    const health = healthClient(address);
    try {
      expect((await health.check("")).status).toBe("SERVING");
      expect((await health.check("keymesh.v1.KeyAdmin").catch((e) => e)).code).toBe(grpc.status.NOT_FOUND);
      expect(Object.keys((await health.list()).statuses)).toContain("envoy.service.auth.v3.Authorization");
      const watch = health.watch("");
      const first = await new Promise((resolve, reject) => {
        watch.once("data", resolve);
        watch.once("error", reject);
      });
      expect(first).toEqual({ status: "SERVING" });
      const ended = new Promise<number>((resolve) =>
        watch.once("error", (e: grpc.ServiceError) => resolve(e.code)),
      );
      watch.cancel();
      expect(await ended).toBe(grpc.status.CANCELLED);
    } finally {
      health.close();
    }
  });

  it("lists and describes the port's services through reflection v1 and v1alpha", async () => {
    for (const version of ["v1", "v1alpha"] as const) {
      const reflection = reflectionClient(address, version);
      try {
        const [list] = await reflection.ask({ list_services: "" });
        const names = list?.list_services_response?.service.map((s) => s.name);
        expect(names).toContain("envoy.service.auth.v3.Authorization");
        const [file] = await reflection.ask({ file_containing_symbol: "keymesh.v1.KeyVerify" });
        expect(file?.file_descriptor_response?.file_descriptor_proto.length).toBeGreaterThan(0);
      } finally {
        reflection.close();
      }
    }
  });
});

describe("the gRPC protocol's failure paths, seen by grpc-js", () => {
  it("answers an unknown method UNIMPLEMENTED naming it", async () => {
    const error = await call("/no.Such/Method", Buffer.alloc(0)).catch((e) => e);
    expect(codeOf(error)).toBe(grpc.status.UNIMPLEMENTED);
    expect((error as grpc.ServiceError).details).toContain("/no.Such/Method");
  });

  it("answers a message over the limit RESOURCE_EXHAUSTED, plain and compressed, and one under it", async () => {
    const big = Buffer.alloc(64 * 1024 + 1, 7);
    expect(codeOf(await call(ECHO_PATH, big).catch((e) => e))).toBe(grpc.status.RESOURCE_EXHAUSTED);
    // Zeros compress to almost nothing: the limit holds after decompression too.
    const gzip = { "grpc.default_compression_algorithm": 2 };
    expect(codeOf(await call(ECHO_PATH, Buffer.alloc(1024 * 1024), { channel: gzip }).catch((e) => e))).toBe(
      grpc.status.RESOURCE_EXHAUSTED,
    );
    expect((await call(ECHO_PATH, Buffer.alloc(64 * 1024, 7))).length).toBe(64 * 1024);
  });

  it("passes the caller's deadline to the method and ends the call DEADLINE_EXCEEDED when it passes", async () => {
    const before = server.hung.length;
    const started = Date.now();
    const error = await call(HANG_PATH, Buffer.alloc(0), { deadlineMs: 300 }).catch((e) => e);
    expect(codeOf(error)).toBe(grpc.status.DEADLINE_EXCEEDED);
    const hung = server.hung[before]!;
    expect(hung.deadline).toBeGreaterThanOrEqual(started + 200);
    expect(hung.deadline).toBeLessThanOrEqual(Date.now() + 50);
    // A late answer goes nowhere and breaks nothing.
    hung.done({ kind: "response", bytes: Buffer.from("late") });
    expect((await call(ECHO_PATH, Buffer.from("still up"))).toString()).toBe("still up");
  });

  it("drops the answer of a call the client cancelled and keeps serving the connection", async () => {
    const client = new grpc.Client(address, grpc.credentials.createInsecure());
    try {
      const before = server.hung.length;
      const pending = new Promise<number>((resolve) => {
        const c = client.makeUnaryRequest(
          HANG_PATH,
          (b: Buffer) => b,
          raw,
          Buffer.alloc(0),
          (error) => resolve(error?.code ?? -1),
        );
        const poll = setInterval(() => {
          if (server.hung.length > before) {
            clearInterval(poll);
            c.cancel();
          }
        }, 5);
      });
      expect(await pending).toBe(grpc.status.CANCELLED);
      server.hung[before]!.done({ kind: "response", bytes: Buffer.from("late") });
      const echoed = await new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          ECHO_PATH,
          (b: Buffer) => b,
          raw,
          Buffer.from("after"),
          (e, r) => (e ? reject(e) : resolve(r!)),
        ),
      );
      expect(echoed.toString()).toBe("after");
    } finally {
      client.close();
    }
  });

  it("finishes a call in flight when the listener closes, and refuses new connections", async () => {
    const own = await startTestServer();
    const target = `127.0.0.1:${own.port}`;
    const client = new grpc.Client(target, grpc.credentials.createInsecure());
    try {
      const inFlight = new Promise<Buffer>((resolve, reject) =>
        client.makeUnaryRequest(
          HANG_PATH,
          (b: Buffer) => b,
          raw,
          Buffer.alloc(0),
          (e, r) => (e ? reject(e) : resolve(r!)),
        ),
      );
      while (own.hung.length === 0) await new Promise((r) => setTimeout(r, 5));
      const closed = own.listener.close(5000);
      setTimeout(() => own.hung[0]!.done({ kind: "response", bytes: Buffer.from("finished") }), 100);
      expect((await inFlight).toString()).toBe("finished");
      await closed;
      const refused = await call(ECHO_PATH, Buffer.alloc(0), { target, deadlineMs: 1000 }).catch((e) => e);
      expect([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED]).toContain(codeOf(refused));
    } finally {
      client.close();
    }
  });
});
