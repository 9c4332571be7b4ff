/** The KeyAdmin gate: authorization from headers before any body is read (src/transport/connect/admin-gate.ts); no Postgres or Redis. */
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import {
  connectNodeAdapter,
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import fc from "fast-check";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../../gen/keymesh/v1/admin_pb.js";
import { ROOT_KEY_SPACE_ID } from "../../../src/admin/admin-policy.js";
import { createAdminGate } from "../../../src/transport/connect/admin-gate.js";
import { adminActor, adminAuthInterceptor } from "../../../src/transport/connect/interceptors.js";
import { type HttpListener, listenHttp } from "../../../src/transport/listen.js";
import { type RpcProtocol, rpcCodeOf, sendH1, sendH2 } from "../../support/raw-client.js";
import { allow, createFakeAuthorizer, identity } from "../fixtures.js";

// The fake authorizer's tokens, with "allow" answering as a key of the system key space: only root keys pass.
const fake = createFakeAuthorizer();
const authorizer = {
  seen: fake.seen,
  check(request: Parameters<typeof fake.check>[0]) {
    if (request.headers.get("authorization") !== "Bearer allow") return fake.check(request);
    fake.seen.push(request);
    return allow({ identity: { ...identity, keySpaceId: ROOT_KEY_SPACE_ID } });
  },
};
let implementationCalls = 0;
let listener: HttpListener;
let baseUrl: string;

beforeAll(async () => {
  const gate = createAdminGate(authorizer, KeyAdmin);
  const adapter = connectNodeAdapter({
    routes: (router) => {
      router.service(KeyAdmin, {
        getKeySpace(_req, ctx) {
          implementationCalls++;
          return { keySpace: { id: ctx.values.get(adminActor).keyId } };
        },
      });
    },
    contextValues: (req) => gate.contextValues(req),
    interceptors: [adminAuthInterceptor(authorizer, KeyAdmin.typeName)],
  });
  listener = await listenHttp(gate.wrap(adapter), { host: "127.0.0.1", port: 0, closeGraceMs: 100 });
  baseUrl = `http://127.0.0.1:${listener.port}`;
});

afterAll(() => listener.close());

beforeEach(() => {
  authorizer.seen.length = 0;
  implementationCalls = 0;
});

function bearer(token: string | undefined): Interceptor {
  return (next) => (req) => {
    if (token !== undefined) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

const transports: Record<string, (token: string | undefined) => Transport> = {
  "Connect JSON over HTTP/1.1": (t) =>
    createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer(t)] }),
  "Connect binary over HTTP/2": (t) =>
    createConnectTransport({ baseUrl, httpVersion: "2", useBinaryFormat: true, interceptors: [bearer(t)] }),
  "gRPC over HTTP/2": (t) => createGrpcTransport({ baseUrl, interceptors: [bearer(t)] }),
  "gRPC-Web over HTTP/1.1": (t) =>
    createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors: [bearer(t)] }),
};

async function codeOfCall(transport: Transport): Promise<Code | "ok"> {
  try {
    await createClient(KeyAdmin, transport).getKeySpace({ id: "ks_1" });
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

type Protocol = RpcProtocol;

const CONTENT_TYPES: Record<Protocol, string[]> = {
  connect: ["application/json", "application/proto"],
  grpc: ["application/grpc", "application/grpc+proto", "application/grpc+json"],
  "grpc-web": ["application/grpc-web+proto", "application/grpc-web+json", "application/grpc-web"],
};

/** What the gate answers per token of the fake authorizer ("none": no Authorization header). */
const REFUSALS = {
  none: "unauthenticated",
  nope: "unauthenticated",
  expired: "unauthenticated",
  scope: "permission_denied",
  // A valid key of a customer key space is no root key.
  warn: "unauthenticated",
  error: "unavailable",
  throw: "unavailable",
} as const;

describe("KeyAdmin gate (no Postgres, no Redis)", () => {
  for (const [name, transport] of Object.entries(transports)) {
    it(`refuses a call without a valid root key and passes one with it, over ${name}`, async () => {
      expect(await codeOfCall(transport(undefined))).toBe(Code.Unauthenticated);
      expect(await codeOfCall(transport("nope"))).toBe(Code.Unauthenticated);
      expect(await codeOfCall(transport("scope"))).toBe(Code.PermissionDenied);
      expect(await codeOfCall(transport("warn"))).toBe(Code.Unauthenticated);
      expect(await codeOfCall(transport("error"))).toBe(Code.Unavailable);
      expect(implementationCalls).toBe(0);
      const reply = await createClient(KeyAdmin, transport("allow")).getKeySpace({ id: "ks_1" });
      // The gate's verdict reaches the implementation, and the interceptor does not ask the authorizer again.
      expect(reply.keySpace?.id).toBe("key_1");
      expect(implementationCalls).toBe(1);
      expect(authorizer.seen.filter((r) => r.headers.get("authorization") === "Bearer allow")).toHaveLength(
        1,
      );
    });
  }

  it("answers a refused call while its body is still missing, in every protocol's wire form (property)", async () => {
    const refusal = fc.record({
      method: fc.constantFrom(...KeyAdmin.methods.map((m) => m.name)),
      token: fc.constantFrom(...(Object.keys(REFUSALS) as (keyof typeof REFUSALS)[])),
      protocol: fc.constantFrom<Protocol>("connect", "grpc", "grpc-web"),
      contentType: fc.nat(),
      http2: fc.boolean(),
      declared: fc.option(fc.integer({ min: 1, max: 2 ** 40 }), { nil: undefined }),
      sent: fc.integer({ min: 0, max: 64 * 1024 }),
      encoding: fc.constantFrom(undefined, "gzip", "br", "identity"),
    });
    await fc.assert(
      fc.asyncProperty(refusal, async (r) => {
        // gRPC needs HTTP/2 (trailers); the others are tried on both.
        const useH2 = r.protocol === "grpc" || r.http2;
        const types = CONTENT_TYPES[r.protocol];
        const headers: Record<string, string> = { "content-type": types[r.contentType % types.length]! };
        if (r.token !== "none") headers.authorization = `Bearer ${r.token}`;
        if (r.declared !== undefined) headers["content-length"] = String(Math.max(r.declared, r.sent + 1));
        if (r.encoding) headers[r.protocol === "connect" ? "content-encoding" : "grpc-encoding"] = r.encoding;
        // The body never ends: only an answer that does not wait for it can arrive.
        const request = {
          path: `/${KeyAdmin.typeName}/${r.method}`,
          headers,
          body: { chunk: Buffer.alloc(Math.max(1, r.sent)), size: r.sent },
          stall: true,
        };
        const outcome = useH2
          ? await sendH2(listener.port, request, 5000)
          : await sendH1(listener.port, request, 5000);
        expect(outcome.end).toBe("response");
        expect(rpcCodeOf(r.protocol, outcome)).toBe(REFUSALS[r.token]);
        expect(implementationCalls).toBe(0);
      }),
      { numRuns: 60 },
    );
  });
});
