import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpAuthzHandler, type HttpAuthzOptions } from "../../../src/transport/http/authz-handler.js";
import { createFakeAuthorizer } from "../fixtures.js";

const authorizer = createFakeAuthorizer();
const servers: Server[] = [];

async function serve(options: Partial<HttpAuthzOptions> = {}): Promise<string> {
  const server = createServer(createHttpAuthzHandler({ authorizer, ...options }));
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

let base: string;
let errorBase: string;

beforeAll(async () => {
  base = await serve();
  errorBase = await serve({ decisionOptions: { failureMode: "error" }, approvalStatus: 202 });
});

afterAll(async () => {
  for (const s of servers) await new Promise((resolve) => s.close(resolve));
});

const auth = (token: string) => ({ authorization: `Bearer ${token}` });
const lastSeen = () => authorizer.seen.at(-1)!;

describe("HTTP ext_authz handler", () => {
  it("answers 200 with identity, rate-limit and credential-removal headers on allow", async () => {
    const res = await fetch(`${base}/authz/v1/pods`, { headers: auth("limited") });
    expect(res.status).toBe(200);
    expect(res.headers.get("x-keymesh-key-id")).toBe("key_1");
    expect(res.headers.get("x-keymesh-owner-id")).toBe("mem_acting");
    expect(res.headers.get("x-keymesh-scopes")).toBe("pods:read,pods:write");
    expect(res.headers.get("x-ratelimit-remaining")).toBe("7");
    expect(res.headers.get("x-envoy-auth-headers-to-remove")).toBe("authorization");
    expect(await res.text()).toBe("");
  });

  it("takes the original request from the path under the prefix in Envoy http_service mode, query included", async () => {
    await fetch(`${base}/authz/v1/pods?key_space=evil&x=1`, { method: "DELETE", headers: auth("allow") });
    // A client's query must not choose the key space: under the prefix, the query belongs to the client.
    expect(lastSeen()).toMatchObject({ method: "DELETE", path: "/v1/pods?key_space=evil&x=1", keySpace: "" });
  });

  it("takes the original request from X-Forwarded-* (Traefik) and X-Original-* (nginx) headers", async () => {
    await fetch(`${base}/authz`, {
      headers: { ...auth("allow"), "x-forwarded-method": "post", "x-forwarded-uri": "/v1/pods?a=b" },
    });
    expect(lastSeen()).toMatchObject({ method: "POST", path: "/v1/pods?a=b" });
    await fetch(`${base}/authz`, {
      headers: { ...auth("allow"), "x-original-method": "PUT", "x-original-uri": "/v2/things" },
    });
    expect(lastSeen()).toMatchObject({ method: "PUT", path: "/v2/things" });
  });

  it("refuses with 400 when a client adds the other proxy's header pair with a different request line", async () => {
    const seen = authorizer.seen.length;
    const res = await fetch(`${base}/authz?key_space=pods`, {
      headers: { ...auth("allow"), "x-original-method": "POST", "x-forwarded-method": "GET" },
    });
    expect(res.status).toBe(400);
    expect(authorizer.seen.length).toBe(seen);
  });

  it("on the bare endpoint, ignores keymesh headers a client sent along with the auth subrequest", async () => {
    await fetch(`${base}/authz?key_space=pods`, {
      headers: { ...auth("allow"), "x-keymesh-scope": "pods:read", "x-keymesh-cost": "0" },
    });
    expect(lastSeen()).toMatchObject({ keySpace: "pods", scopes: [], cost: 0 });
  });

  it("reads key space, scopes and cost from the auth URL's query, and under the prefix from the keymesh headers", async () => {
    await fetch(`${base}/authz?key_space=pods&scope=pods:read,pods:write&cost=4`, {
      headers: { ...auth("allow"), "x-keymesh-key-space": "ignored" },
    });
    expect(lastSeen()).toMatchObject({ keySpace: "pods", scopes: ["pods:read", "pods:write"], cost: 4 });
    await fetch(`${base}/authz/x`, {
      headers: {
        ...auth("allow"),
        "x-keymesh-key-space": "billing",
        "x-keymesh-scope": "a b",
        "x-keymesh-cost": "2",
      },
    });
    expect(lastSeen()).toMatchObject({ keySpace: "billing", scopes: ["a", "b"], cost: 2 });
  });

  it("denies with 401, WWW-Authenticate and a JSON body", async () => {
    const res = await fetch(`${base}/authz/v1`);
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Bearer realm="keymesh"');
    expect(res.headers.get("content-type")).toBe("application/json");
    expect(await res.json()).toEqual({ error: { code: "missing", message: "an API key is required" } });
    expect(res.headers.get("x-keymesh-key-id")).toBeNull();
  });

  it("denies with 403, 429 with Retry-After, and 503 for backend failures", async () => {
    expect((await fetch(`${base}/authz/v1`, { headers: auth("scope") })).status).toBe(403);
    const limited = await fetch(`${base}/authz/v1`, { headers: auth("ratelimited") });
    expect([
      limited.status,
      limited.headers.get("retry-after"),
      limited.headers.get("x-ratelimit-remaining"),
    ]).toEqual([429, "30", "0"]);
    for (const token of ["error", "throw", "unavailable"]) {
      const res = await fetch(`${base}/authz/v1`, { headers: auth(token) });
      expect(res.status).toBe(503);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    }
  });

  it("answers approvals with 403 by default, since nginx and Traefik treat any 2xx as allow, and 202 when configured", async () => {
    const safe = await fetch(`${base}/authz/v1`, { headers: auth("approval") });
    expect(safe.status).toBe(403);
    expect(await safe.json()).toEqual({ approval: { id: "apr_1", status: "pending" } });
    expect((await fetch(`${errorBase}/authz/v1`, { headers: auth("approval") })).status).toBe(202);
  });

  it("answers 503 under failureMode error too, which Envoy's http_service treats as an error", async () => {
    expect((await fetch(`${errorBase}/authz/v1`, { headers: auth("error") })).status).toBe(503);
  });

  it("answers a hanging authorizer with 503 near the deadline", async () => {
    const started = performance.now();
    const res = await fetch(`${base}/authz/v1`, { headers: auth("hang") });
    expect(res.status).toBe(503);
    expect(performance.now() - started).toBeLessThan(190);
  });

  it("passes a forwarded request body to the authorizer and omits bodies on HEAD", async () => {
    await fetch(`${base}/authz/v1`, { method: "POST", headers: auth("allow"), body: "payload" });
    expect(Buffer.from(lastSeen().body!).toString()).toBe("payload");
    const head = await fetch(`${base}/authz/v1`, { method: "HEAD" });
    expect(head.status).toBe(401);
    expect(await head.text()).toBe("");
  });

  it("survives bad credentials, and refuses a body over the limit with 413 without asking the authorizer", async () => {
    const before = authorizer.seen.length;
    const big = await fetch(`${base}/authz/v1`, {
      method: "POST",
      headers: auth("allow"),
      body: "x".repeat(100_000),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: { code: "payload_too_large" } });
    expect(authorizer.seen.length).toBe(before);
    const garbage = await fetch(`${base}/authz/v1`, { headers: { authorization: "Bearer \u00ff\u00fe" } });
    expect(garbage.status).toBe(401);
  });
});
