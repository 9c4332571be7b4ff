import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serveCheck } from "../../../src/transport/envoy/hot-path-h2.js";
import { type GrpcListener, listenGrpcH2 } from "../../../src/transport/grpc-h2/listen.js";
import { createGrpcH2Server } from "../../../src/transport/grpc-h2/server.js";
import {
  createOfficialEnvoyClient,
  headerOf,
  type OfficialCheckResponse,
} from "../../support/official-envoy-client.js";
import { createFakeAuthorizer } from "../fixtures.js";

interface Running {
  listener: GrpcListener;
  client: ReturnType<typeof createOfficialEnvoyClient>;
  authorizer: ReturnType<typeof createFakeAuthorizer>;
}

async function start(failureMode: "deny" | "error"): Promise<Running> {
  const server = createGrpcH2Server();
  const authorizer = createFakeAuthorizer();
  serveCheck(server, { authorizer, decisionOptions: { failureMode, realm: "pods" } });
  const listener = await listenGrpcH2(server, { host: "127.0.0.1", port: 0 });
  return { listener, authorizer, client: createOfficialEnvoyClient(`127.0.0.1:${listener.port}`) };
}

let deny: Running;
let error: Running;

beforeAll(async () => {
  [deny, error] = await Promise.all([start("deny"), start("error")]);
});

afterAll(async () => {
  for (const r of [deny, error]) {
    r?.client.close();
    await r?.listener.close(100);
  }
});

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });
const body = (res: OfficialCheckResponse) => JSON.parse(res.denied_response!.body);

describe("ext_authz Check over gRPC, called with the official Envoy protos", () => {
  it("allows with identity headers, OVERWRITE_IF_EXISTS_OR_ADD everywhere, the credential removed and dynamic metadata", async () => {
    const res = await deny.client.check(bearer("allow"));
    expect(res.status?.code).toBe(0);
    expect(res.http_response).toBe("ok_response");
    const ok = res.ok_response!;
    expect(headerOf(ok.headers, "x-keymesh-key-id")).toBe("key_1");
    expect(headerOf(ok.headers, "x-keymesh-workspace-id")).toBe("ws_1");
    expect(headerOf(ok.headers, "x-keymesh-owner-id")).toBe("mem_acting");
    expect(headerOf(ok.headers, "x-keymesh-owner-type")).toBe("organization");
    expect(headerOf(ok.headers, "x-keymesh-scopes")).toBe("pods:read,pods:write");
    expect(headerOf(ok.headers, "x-keymesh-key-space-id")).toBe("ks_1");
    for (const h of [...ok.headers, ...ok.response_headers_to_add]) {
      expect(h.append_action).toBe("OVERWRITE_IF_EXISTS_OR_ADD");
      expect(h.append).toBeNull();
    }
    expect(ok.headers_to_remove).toEqual(["authorization"]);
    expect(res.dynamic_metadata?.fields.key_id?.stringValue).toBe("key_1");
    expect(res.dynamic_metadata?.fields.scopes?.listValue?.values.map((v) => v.stringValue)).toEqual([
      "pods:read",
      "pods:write",
    ]);
  });

  it("sends rate-limit and warning headers to the client on allow", async () => {
    const limited = await deny.client.check(bearer("limited"));
    const add = limited.ok_response!.response_headers_to_add;
    expect(headerOf(add, "x-ratelimit-remaining")).toBe("7");
    expect(headerOf(add, "x-ratelimit-reset")).toBe("1900000000");
    const warned = await deny.client.check(bearer("warn"));
    expect(headerOf(warned.ok_response!.response_headers_to_add, "x-keymesh-warning")).toContain(
      "rotated within 3 days",
    );
  });

  it("passes method, path, headers, header_map raw values and the context extensions to the authorizer", async () => {
    const res = await deny.client.check({
      method: "POST",
      path: "/v1/pods?dry=1",
      headerMap: [{ key: "Authorization", raw_value: Buffer.from("Bearer allow") }],
      contextExtensions: { "keymesh.key_space": "pods", "keymesh.scope": "pods:write", "keymesh.cost": "3" },
    });
    expect(res.status?.code).toBe(0);
    expect(deny.authorizer.seen.at(-1)).toMatchObject({
      keySpace: "pods",
      scopes: ["pods:write"],
      method: "POST",
      path: "/v1/pods?dry=1",
      cost: 3,
    });
  });

  it("denies a missing or unknown key with 401, WWW-Authenticate and a JSON body, never a gRPC error", async () => {
    for (const input of [{}, bearer("nope")]) {
      const res = await deny.client.check(input);
      expect(res.status?.code).toBe(16);
      expect(res.denied_response?.status?.code).toBe("Unauthorized");
      expect(headerOf(res.denied_response?.headers, "www-authenticate")).toMatch(/^Bearer realm="pods"/);
      expect(headerOf(res.denied_response?.headers, "content-type")).toBe("application/json");
      expect(body(res).error.code).toMatch(/missing|not_found/);
      for (const h of res.denied_response!.headers)
        expect(h.append_action).toBe("OVERWRITE_IF_EXISTS_OR_ADD");
    }
  });

  it("denies a missing scope with 403", async () => {
    const res = await deny.client.check(bearer("scope"));
    expect([res.status?.code, res.denied_response?.status?.code]).toEqual([7, "Forbidden"]);
    expect(body(res)).toEqual({
      error: { code: "insufficient_scope", message: "the API key lacks the scope pods:write" },
    });
  });

  it("denies an exhausted limit with 429, Retry-After and the rate-limit headers", async () => {
    const res = await deny.client.check(bearer("ratelimited"));
    expect(res.denied_response?.status?.code).toBe("TooManyRequests");
    const headers = res.denied_response!.headers;
    expect(headerOf(headers, "retry-after")).toBe("30");
    expect(headerOf(headers, "x-ratelimit-remaining")).toBe("0");
    expect(headerOf(headers, "x-ratelimit-reset")).toBe("1900000012");
  });

  it("answers an approval-level request with 202 and the pending approval", async () => {
    const res = await deny.client.check(bearer("approval"));
    expect(res.status?.code).not.toBe(0);
    expect(res.denied_response?.status?.code).toBe("Accepted");
    expect(body(res)).toEqual({ approval: { id: "apr_1", status: "pending" } });
  });

  it("turns a backend failure, an exception and a domain 'unavailable' into 503 denials under failureMode deny", async () => {
    for (const token of ["error", "throw", "unavailable"]) {
      const res = await deny.client.check(bearer(token));
      expect(res.denied_response?.status?.code).toBe("ServiceUnavailable");
      expect(res.status?.code).toBe(14);
      expect(res.denied_response?.body).not.toContain("10.0.0.5");
    }
  });

  it("answers a hanging authorizer with a 503 decision near the 150 ms deadline, inside Envoy's 200 ms", async () => {
    const started = performance.now();
    const res = await deny.client.check(bearer("hang"), 200);
    const elapsed = performance.now() - started;
    expect(res.denied_response?.status?.code).toBe("ServiceUnavailable");
    expect(elapsed).toBeGreaterThanOrEqual(140);
    expect(elapsed).toBeLessThan(190);
  });

  it("shortens the deadline to fit a caller deadline sooner than 150 ms", async () => {
    const res = await deny.client.check(bearer("hang"), 100);
    expect(res.denied_response?.status?.code).toBe("ServiceUnavailable");
  });

  it("answers garbage, truncated, empty and oversized requests with a clean 401 malformed", async () => {
    const valid = Buffer.from([0x0a, 0x06, 0x22, 0x04, 0x12, 0x02, 0x12, 0x00]);
    const inputs = [
      Buffer.from([0xff, 0xff, 0xff, 0xff]),
      valid.subarray(0, 5),
      Buffer.alloc(0),
      Buffer.from("garbage"),
    ];
    for (const bytes of inputs) {
      const res = await deny.client.checkRaw(bytes);
      expect(res.denied_response?.status?.code).toBe("Unauthorized");
      expect(body(res).error.code).toBe("malformed");
    }
    const huge = await deny.client.check({ headers: { authorization: `Bearer ${"x".repeat(200_000)}` } });
    expect(body(huge).error.code).toBe("malformed");
    const nonUtf8 = await deny.client.check({
      headerMap: [{ key: "authorization", raw_value: Buffer.from([0xc3, 0x28]) }],
    });
    expect(nonUtf8.denied_response?.status?.code).toBe("Unauthorized");
    // The server is still healthy afterwards.
    expect((await deny.client.check(bearer("allow"))).status?.code).toBe(0);
  });
});

describe("ext_authz Check with failureMode error", () => {
  it("returns gRPC UNAVAILABLE for a backend failure so Envoy's failure_mode_allow decides", async () => {
    await expect(error.client.check(bearer("error"))).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    await expect(error.client.check(bearer("throw"))).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
  });

  it("returns UNAVAILABLE for a hanging authorizer before Envoy's timeout", async () => {
    const started = performance.now();
    await expect(error.client.check(bearer("hang"), 1000)).rejects.toMatchObject({
      code: grpc.status.UNAVAILABLE,
    });
    expect(performance.now() - started).toBeLessThan(190);
  });

  it("still answers real denials and allows as decisions", async () => {
    expect((await error.client.check(bearer("scope"))).denied_response?.status?.code).toBe("Forbidden");
    expect((await error.client.check(bearer("unavailable"))).denied_response?.status?.code).toBe(
      "ServiceUnavailable",
    );
    expect((await error.client.check(bearer("allow"))).status?.code).toBe(0);
    expect((await error.client.checkRaw(Buffer.from([0xff]))).denied_response?.status?.code).toBe(
      "Unauthorized",
    );
  });
});

describe("the gRPC listener's HTTP/2 connections", () => {
  it("has every connection's stream map recycled, so that a long-lived Envoy connection does not feed the old generation", async () => {
    expect((await deny.client.check(bearer("allow"))).status?.code).toBe(0);
    // grpc-js keeps its node:http2 servers in a private field; a release that moves them must fail here.
    expect(deny.listener.streamMaps.watching).toBeGreaterThanOrEqual(1);
    expect(deny.listener.streamMaps.unsupported).toBe(0);
  });
});
