import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import {
  KeyVerify,
  VerifyCode,
  VerifyRequestSchema,
  VerifyResponseSchema,
} from "../../gen/keymesh/v1/verify_pb.js";
import { serveVerify } from "../../src/transport/envoy/hot-path-h2.js";
import { createVerifyHandler } from "../../src/transport/envoy/verify-grpc.js";
import { type GrpcListener, listenGrpcH2 } from "../../src/transport/grpc-h2/listen.js";
import { createGrpcH2Server } from "../../src/transport/grpc-h2/server.js";
import {
  validateVerifyRequest,
  verdictToVerifyResponse,
  verifyRequestToCheck,
  verifyWithAuthorizer,
} from "../../src/transport/verify-mapping.js";
import { allow, createFakeAuthorizer, DENY_REASONS, deny, limit } from "./fixtures.js";

const request = (init: Parameters<typeof create<typeof VerifyRequestSchema>>[1]) =>
  create(VerifyRequestSchema, init);

describe("verifyRequestToCheck", () => {
  it("hands a raw key over as presented, whatever header its key space reads, and copies the request line", () => {
    const check = verifyRequestToCheck(
      request({ key: "km_abc", keySpaceId: "ks", scopes: ["a"], cost: 3, method: "post", path: "/x" }),
    );
    expect(check).toMatchObject({ keySpace: "ks", scopes: ["a"], cost: 3, method: "POST", path: "/x" });
    expect(check.presentedKey).toBe("km_abc");
    expect(check.headers.has("authorization")).toBe(false);
  });

  it("hands an id:secret key over whole, in the form its digest is computed from", () => {
    expect(verifyRequestToCheck(request({ key: "id_1:s3cret", keySpaceId: "ks" })).presentedKey).toBe(
      "id_1:s3cret",
    );
  });

  it("uses the authorization field as given when no key is set, and no header when neither is", () => {
    expect(
      verifyRequestToCheck(request({ authorization: "Basic Zm9v", keySpaceId: "ks" })).headers.get(
        "authorization",
      ),
    ).toBe("Basic Zm9v");
    expect(verifyRequestToCheck(request({ keySpaceId: "ks" })).headers.has("authorization")).toBe(false);
  });
});

describe("validateVerifyRequest", () => {
  it("names key_space_id when it is missing, and each bounded field when over its bound", () => {
    expect(validateVerifyRequest(request({ key: "k" }))?.field).toBe("key_space_id");
    expect(validateVerifyRequest(request({ keySpaceId: "ks", key: "k".repeat(4097) }))?.field).toBe("key");
    expect(validateVerifyRequest(request({ keySpaceId: "ks", method: "M".repeat(17) }))?.field).toBe(
      "method",
    );
    expect(validateVerifyRequest(request({ keySpaceId: "ks", scopes: Array(65).fill("s") }))?.field).toBe(
      "scopes",
    );
    expect(validateVerifyRequest(request({ keySpaceId: "ks", cost: 1_000_001 }))?.field).toBe("cost");
    expect(validateVerifyRequest(request({ keySpaceId: "ks", key: "k" }))).toBeUndefined();
  });
});

describe("verdictToVerifyResponse", () => {
  it("maps an allow to VALID with the identity, limits and warnings", () => {
    const res = verdictToVerifyResponse(
      allow({
        limits: [limit({ remaining: 4, resetAt: 1_900_000_000, retryAfterSeconds: 0 })],
        warnings: ["w"],
      }),
    );
    expect(res).toMatchObject({
      code: VerifyCode.VALID,
      valid: true,
      identity: {
        keyId: "key_1",
        ownerType: OwnerType.ORGANIZATION,
        actingMemberId: "mem_acting",
        metadata: { team: "infra" },
      },
      warnings: ["w"],
    });
    expect(res.limits[0]).toMatchObject({ name: "per-minute", appliesTo: "key", limit: 100n, remaining: 4n });
    expect(timestampMs(res.limits[0]!.reset!)).toBe(1_900_000_000_000);
    // The message must survive the wire.
    expect(() => toBinary(VerifyResponseSchema, res)).not.toThrow();
  });

  it("gives every deny reason its own VerifyCode and keeps the message", () => {
    const codes = DENY_REASONS.map((r) => verdictToVerifyResponse(deny(r)));
    expect(new Set(codes.map((c) => c.code)).size).toBe(DENY_REASONS.length);
    for (const c of codes)
      expect(c).toMatchObject({ valid: false, message: expect.stringMatching(/^denied: /) });
    expect(verdictToVerifyResponse(deny("revoked")).code).toBe(VerifyCode.REVOKED);
    expect(verdictToVerifyResponse(deny("rate_limited")).code).toBe(VerifyCode.RATE_LIMITED);
  });

  it("maps a backend failure to UNAVAILABLE without its internal cause", () => {
    const res = verdictToVerifyResponse({ kind: "error", message: "db at 10.0.0.5 down" });
    expect(res.code).toBe(VerifyCode.UNAVAILABLE);
    expect(res.message).not.toContain("10.0.0.5");
  });

  it("drops key metadata that JSON cannot carry instead of failing", () => {
    const v = allow();
    if (v.kind === "allow") v.identity = { ...v.identity, metadata: { n: 1n } };
    expect(verdictToVerifyResponse(v).identity?.metadata).toEqual({});
  });
});

describe("KeyVerify over the node:http2 gRPC server", () => {
  const servers: { listener: GrpcListener; client: ReturnType<typeof createClient<typeof KeyVerify>> }[] = [];

  beforeAll(async () => {
    for (const failureMode of ["deny", "error"] as const) {
      const server = createGrpcH2Server();
      serveVerify(server, { verify: verifyWithAuthorizer(createFakeAuthorizer()), failureMode });
      const listener = await listenGrpcH2(server, { host: "127.0.0.1", port: 0 });
      const client = createClient(
        KeyVerify,
        createGrpcTransport({ baseUrl: `http://127.0.0.1:${listener.port}` }),
      );
      servers.push({ listener, client });
    }
  });

  afterAll(async () => {
    for (const s of servers) await s.listener.close(100);
  });

  it("answers verdicts as data: VALID with identity, INSUFFICIENT_SCOPE, NOT_FOUND", async () => {
    const { client } = servers[0]!;
    expect(await client.verify({ key: "allow", keySpaceId: "ks" })).toMatchObject({
      code: VerifyCode.VALID,
      valid: true,
      identity: { keyId: "key_1", workspaceId: "ws_1" },
    });
    expect((await client.verify({ key: "scope", keySpaceId: "ks" })).code).toBe(
      VerifyCode.INSUFFICIENT_SCOPE,
    );
    expect((await client.verify({ key: "other", keySpaceId: "ks" })).code).toBe(VerifyCode.NOT_FOUND);
    expect(
      (await client.verify({ authorization: "Bearer ratelimited", keySpaceId: "ks" })).limits,
    ).toHaveLength(2);
  });

  it("rejects a request without key_space_id with INVALID_ARGUMENT naming the field", async () => {
    const error = await servers[0]!.client.verify({ key: "allow" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("key_space_id");
  });

  it("answers a backend failure as code UNAVAILABLE under failureMode deny, and as gRPC UNAVAILABLE under error", async () => {
    expect((await servers[0]!.client.verify({ key: "error", keySpaceId: "ks" })).code).toBe(
      VerifyCode.UNAVAILABLE,
    );
    const error = await servers[1]!.client
      .verify({ key: "error", keySpaceId: "ks" })
      .catch((e: unknown) => e);
    expect((error as ConnectError).code).toBe(Code.Unavailable);
    expect((await servers[1]!.client.verify({ key: "scope", keySpaceId: "ks" })).code).toBe(
      VerifyCode.INSUFFICIENT_SCOPE,
    );
  });

  it("answers a hanging verifier within the deadline", async () => {
    const started = performance.now();
    expect((await servers[0]!.client.verify({ key: "hang", keySpaceId: "ks" })).code).toBe(
      VerifyCode.UNAVAILABLE,
    );
    expect(performance.now() - started).toBeLessThan(190);
  });

  it("rejects undecodable request bytes with INVALID_ARGUMENT", async () => {
    const handle = createVerifyHandler({ verify: verifyWithAuthorizer(createFakeAuthorizer()) });
    expect(await handle(new Uint8Array([0xff, 0xff]))).toMatchObject({
      ok: false,
      code: grpc.status.INVALID_ARGUMENT,
    });
    const ok = await handle(toBinary(VerifyRequestSchema, request({ key: "allow", keySpaceId: "ks" })));
    expect(ok.ok && fromBinary(VerifyResponseSchema, ok.bytes).valid).toBe(true);
  });
});
