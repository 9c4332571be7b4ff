import { createServer, type Http2Server, type ServerHttp2Session } from "node:http2";
import type { AddressInfo } from "node:net";
import { Code, ConnectError, type ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { KeyVerify, VerifyCode } from "../../gen/keymesh/v1/verify_pb.js";
import { createKeyAdminClient, createKeyVerifyClient } from "../../src/client/index.js";

// A stand-in keymesh that fails the first `failures` calls of each method with `failWith`, and counts every call.
let failures = 0;
let failWith = Code.Unavailable;
const calls = new Map<string, number>();
const authorizations: string[] = [];

function attempt(method: string): void {
  const n = (calls.get(method) ?? 0) + 1;
  calls.set(method, n);
  if (n <= failures) throw new ConnectError(`attempt ${n} of ${method} fails`, failWith);
}

const routes = (router: ConnectRouter) => {
  router.service(KeyVerify, {
    async verify(req) {
      attempt("Verify");
      return {
        valid: req.key === "good",
        code: req.key === "good" ? VerifyCode.VALID : VerifyCode.NOT_FOUND,
      };
    },
  });
  router.service(KeyAdmin, {
    async getKey(req, ctx) {
      authorizations.push(ctx.requestHeader.get("authorization") ?? "");
      attempt("GetKey");
      return { key: { id: req.id } };
    },
    async listKeys() {
      attempt("ListKeys");
      return { keys: [] };
    },
    async revokeKey(req) {
      attempt("RevokeKey");
      return { key: { id: req.id } };
    },
    async createKey(req) {
      attempt("CreateKey");
      return { key: { id: "key_1", name: req.name }, secret: "s" };
    },
  });
};

let server: Http2Server;
let baseUrl: string;
const sessions = new Set<ServerHttp2Session>();

beforeAll(async () => {
  server = createServer(connectNodeAdapter({ routes }));
  server.on("session", (session) => sessions.add(session));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
// Clients keep HTTP/2 sessions open for reuse; close() would wait for them.
afterAll(async () => {
  for (const session of sessions) session.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});
beforeEach(() => {
  failures = 0;
  failWith = Code.Unavailable;
  calls.clear();
  authorizations.length = 0;
});

const codeOf = async (call: Promise<unknown>) => {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
};

describe("keymesh/client (no services: a stand-in server)", () => {
  it("verifies a key in three lines", async () => {
    const keymesh = createKeyVerifyClient({ baseUrl });
    const { valid } = await keymesh.verify({ key: "good", keySpaceId: "trumpet", scopes: ["CreatePod"] });
    expect(valid).toBe(true);
    expect((await keymesh.verify({ key: "bad", keySpaceId: "trumpet" })).code).toBe(VerifyCode.NOT_FOUND);
  });

  for (const protocol of ["connect", "grpc"] as const) {
    it(`retries Verify, Get and List calls that fail UNAVAILABLE until they succeed (${protocol})`, async () => {
      failures = 2;
      const verify = createKeyVerifyClient({ baseUrl, protocol, retry: { initialBackoffMs: 5 } });
      const admin = createKeyAdminClient({
        baseUrl,
        protocol,
        rootKey: "km_root_x",
        retry: { initialBackoffMs: 5 },
      });
      expect((await verify.verify({ key: "good", keySpaceId: "k" })).valid).toBe(true);
      expect((await admin.getKey({ id: "key_1" })).key?.id).toBe("key_1");
      expect(await codeOf(admin.listKeys({}))).toBe("ok");
      expect(Object.fromEntries(calls)).toEqual({ Verify: 3, GetKey: 3, ListKeys: 3 });
    });

    it(`sends a mutation once: an UNAVAILABLE revoke or create is returned, not repeated (${protocol})`, async () => {
      failures = 1;
      const admin = createKeyAdminClient({
        baseUrl,
        protocol,
        rootKey: "km_root_x",
        retry: { initialBackoffMs: 5 },
      });
      expect(await codeOf(admin.revokeKey({ id: "key_1" }))).toBe(Code.Unavailable);
      expect(await codeOf(admin.createKey({ name: "ci" }))).toBe(Code.Unavailable);
      expect(Object.fromEntries(calls)).toEqual({ RevokeKey: 1, CreateKey: 1 });
    });
  }

  it("repeats a CreateKey that carries an idempotency key, which keymesh deduplicates", async () => {
    failures = 1;
    const admin = createKeyAdminClient({ baseUrl, rootKey: "km_root_x", retry: { initialBackoffMs: 5 } });
    expect(await codeOf(admin.createKey({ name: "ci", idempotencyKey: "deploy-42" }))).toBe("ok");
    expect(calls.get("CreateKey")).toBe(2);
  });

  it("gives up after maxAttempts, and never retries other codes", async () => {
    failures = 100;
    const admin = createKeyAdminClient({
      baseUrl,
      rootKey: "k",
      retry: { maxAttempts: 4, initialBackoffMs: 1 },
    });
    expect(await codeOf(admin.getKey({ id: "a" }))).toBe(Code.Unavailable);
    expect(calls.get("GetKey")).toBe(4);

    calls.clear();
    failWith = Code.Internal;
    expect(await codeOf(admin.getKey({ id: "a" }))).toBe(Code.Internal);
    expect(calls.get("GetKey")).toBe(1);

    calls.clear();
    failWith = Code.Unavailable;
    const noRetry = createKeyAdminClient({ baseUrl, rootKey: "k", retry: false });
    expect(await codeOf(noRetry.getKey({ id: "a" }))).toBe(Code.Unavailable);
    expect(calls.get("GetKey")).toBe(1);
  });

  it("keeps retries within the call's deadline", async () => {
    failures = 1_000;
    const verify = createKeyVerifyClient({
      baseUrl,
      timeoutMs: 400,
      retry: { maxAttempts: 1_000, initialBackoffMs: 50, maxBackoffMs: 100 },
    });
    const started = Date.now();
    const code = await codeOf(verify.verify({ key: "good", keySpaceId: "k" }));
    const elapsed = Date.now() - started;
    expect([Code.Unavailable, Code.DeadlineExceeded]).toContain(code);
    expect(elapsed).toBeLessThan(2_000);
    expect(calls.get("Verify")).toBeGreaterThan(1);
    expect(calls.get("Verify")).toBeLessThan(100);
  });

  it("sends the root key on every admin call, retries included, also when a function supplies it", async () => {
    failures = 1;
    let n = 0;
    const admin = createKeyAdminClient({
      baseUrl,
      rootKey: async () => `km_root_${++n}`,
      retry: { initialBackoffMs: 5 },
    });
    await admin.getKey({ id: "a" });
    expect(authorizations).toEqual(["Bearer km_root_1", "Bearer km_root_1"]);
  });
});
