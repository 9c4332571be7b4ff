import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../../support/server.js";
import {
  type Echoed,
  type NginxHandle,
  nginxAvailable,
  shippedNginxConfig,
  startEchoUpstream,
  startNginx,
} from "./nginx.js";

/**
 * deploy/nginx/keymesh.conf, run by Debian's nginx against keymesh (needs Postgres; skipped without nginx). What the
 * file handles, and these tests hold it to:
 *
 * - nginx's auth_request passes only 2xx (allow) and 401/403 (deny) from the subrequest; ANY other status, including
 *   keymesh's 429 and 503, becomes a 500 ("auth request unexpected status: 429" in the error log). The status is
 *   captured with `auth_request_set $km_status $upstream_status` and turned back into 429/503 in an `error_page`
 *   handler, which also re-adds Retry-After and the X-RateLimit-* headers (nginx drops every subrequest header except
 *   WWW-Authenticate). The subrequest's JSON body is always dropped, so the handler writes its own.
 * - An approval-level request: /authz answers 403 (a 2xx would be an allow) with the ticket in X-Keymesh-Approval-Id;
 *   the handler turns that into 202 with the ticket as JSON (test/transport/http/nginx-approvals.int.test.ts).
 * - The subrequest inherits ALL client headers. keymesh's /authz prefers X-Forwarded-Method/-Uri over
 *   X-Original-Method/-URI and honours X-Keymesh-Scope / X-Keymesh-Cost / X-Keymesh-Key-Space, so the auth location
 *   clears them; otherwise a client picks the method, path or scopes keymesh judges.
 * - Only headers set with `proxy_set_header` from `auth_request_set` variables are trustworthy upstream; every identity
 *   header is set that way (an empty value removes the client's copy).
 * - Removing the credential: keymesh sends `x-envoy-auth-headers-to-remove: authorization`; a `map` over that header
 *   blanks Authorization (and X-Api-Key) per request. A key space with forward_credential keeps it.
 */

/** The README's minimal snippet, verbatim apart from ports and paths. */
function readmeConfig(port: number, keymeshPort: number, upstreamPort: number): string {
  return `
  server {
    listen 127.0.0.1:${port};
    location = /_keymesh {
      internal;
      proxy_pass http://127.0.0.1:${keymeshPort}/authz?key_space=ngx;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
    }
    location /v1/ {
      auth_request /_keymesh;
      auth_request_set $keymesh_key $upstream_http_x_keymesh_key_id;
      proxy_set_header X-Keymesh-Key-Id $keymesh_key;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
  }`;
}

const enabled = nginxAvailable();
if (!enabled)
  console.warn("nginx is not installed (apt-get install -y nginx): skipping the nginx auth_request tests");

describe.skipIf(!enabled)(
  "deploy/nginx/keymesh.conf: nginx auth_request in front of keymesh /authz (Postgres)",
  () => {
    let t: TestServer;
    let upstream: Awaited<ReturnType<typeof startEchoUpstream>>;
    let nginx: NginxHandle;
    let forwarding: NginxHandle;
    let readme: NginxHandle;
    let keySpaceId: string;
    let forwardingSpaceId: string;
    let workspaceId: string;

    beforeAll(async () => {
      // A generous decision deadline: opening an approval writes to Postgres, which a loaded CI machine can stall.
      t = await startTestServer({ env: { KEYMESH_CHECK_DEADLINE_MS: "2000" } });
      const common = {
        credentialSources: [{ kind: CredentialSourceKind.BEARER }],
        scopeModel: { hierarchies: [{ scopes: ["read", "write"] }] },
        routes: [
          { method: "GET", path: "/**", scopes: ["read"] },
          { method: "POST", path: "/**", scopes: ["write"] },
        ],
        defaultKeyLimits: [{ name: "minute", capacity: 3n, periodSeconds: 60n }],
      };
      keySpaceId = (
        await t.admin.createKeySpace({
          name: "ngx",
          format: { prefix: "ngx_", style: KeyStyle.SINGLE },
          ...common,
        })
      ).keySpace!.id;
      forwardingSpaceId = (
        await t.admin.createKeySpace({
          name: "ngxfwd",
          format: { prefix: "ngxfwd_", style: KeyStyle.SINGLE },
          forwardCredential: true,
          ...common,
        })
      ).keySpace!.id;
      workspaceId = (await t.admin.createWorkspace({ name: "nginx users", apiAccess: true })).workspace!.id;
      upstream = await startEchoUpstream();
      const keymeshPort = t.server.httpPort;
      const site = (keySpace: string) => (port: number) =>
        shippedNginxConfig({ port, keymeshPort, upstreamPort: upstream.port, keySpace });
      nginx = await startNginx(site("ngx"));
      forwarding = await startNginx(site("ngxfwd"));
      readme = await startNginx((port) => readmeConfig(port, keymeshPort, upstream.port));
    });

    afterAll(async () => {
      await readme?.stop();
      await forwarding?.stop();
      await nginx?.stop();
      await upstream?.stop();
      await t?.stop();
    });

    const createKey = async (scopes: string[], space = keySpaceId) => {
      const issued = await t.admin.createKey({
        keySpaceId: space,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "n",
        scopes,
      });
      return { id: issued.key!.id, secret: issued.secret };
    };

    async function call(
      path: string,
      options: { method?: string; secret?: string; headers?: Record<string, string>; via?: NginxHandle } = {},
    ) {
      const headers: Record<string, string> = { ...options.headers };
      if (options.secret !== undefined) headers.authorization = `Bearer ${options.secret}`;
      const res = await fetch(`${(options.via ?? nginx).url}${path}`, {
        method: options.method ?? "GET",
        headers,
        ...(options.method === "POST" ? { body: "{}" } : {}),
      });
      const text = await res.text();
      const upstreamSaw = res.status === 200 ? (JSON.parse(text) as Echoed) : undefined;
      return { status: res.status, headers: res.headers, text, upstreamSaw };
    }

    it("A valid key reaches the upstream, which gets keymesh's identity headers and not the credential", async () => {
      const key = await createKey(["read"]);
      const res = await call("/v1/workspaces/me?x=1", { secret: key.secret });
      expect(res.status).toBe(200);
      expect(res.upstreamSaw?.url).toBe("/v1/workspaces/me?x=1");
      const seen = res.upstreamSaw!.headers;
      expect(seen["x-keymesh-key-id"]).toBe(key.id);
      expect(seen["x-keymesh-workspace-id"]).toBe(workspaceId);
      expect(seen["x-keymesh-key-space-id"]).toBe(keySpaceId);
      expect(seen["x-keymesh-scopes"]).toBe("read");
      expect(seen["x-keymesh-owner-type"]).toBeTruthy();
      // keymesh asked (x-envoy-auth-headers-to-remove) for the credential to be removed; the map applied it.
      expect(seen.authorization).toBeUndefined();
      expect(JSON.stringify(seen)).not.toContain(key.secret);
      // The client sees the rate-limit state of its key, relayed by add_header.
      expect(res.headers.get("x-ratelimit-limit")).toBe("3");
      expect(res.headers.get("x-ratelimit-remaining")).toBe("2");
    });

    it("A key space that forwards the credential keeps Authorization on the upstream request", async () => {
      const key = await createKey(["read"], forwardingSpaceId);
      const res = await call("/v2/things", { secret: key.secret, via: forwarding });
      expect(res.status).toBe(200);
      expect(res.upstreamSaw!.headers.authorization).toBe(`Bearer ${key.secret}`);
      expect(res.upstreamSaw!.headers["x-keymesh-key-space-id"]).toBe(forwardingSpaceId);
    });

    it("Identity headers forged by the client are overwritten with keymesh's values", async () => {
      const identity = [
        "x-keymesh-key-id",
        "x-keymesh-workspace-id",
        "x-keymesh-owner-id",
        "x-keymesh-owner-type",
        "x-keymesh-scopes",
        "x-keymesh-key-space-id",
      ];
      const forged = fc.dictionary(
        fc.constantFrom(...identity),
        fc.oneof(
          fc.constantFrom("admin", "forged", "ws_other", "user"),
          fc.stringMatching(/^[\x21-\x7e]{1,30}$/),
        ),
        { minKeys: 1 },
      );
      await fc.assert(
        fc.asyncProperty(forged, async (headers) => {
          const key = await createKey(["read"]);
          const res = await call("/v1/workspaces/me", { secret: key.secret, headers });
          expect(res.status).toBe(200);
          const seen = res.upstreamSaw!.headers;
          expect(seen["x-keymesh-key-id"]).toBe(key.id);
          expect(seen["x-keymesh-workspace-id"]).toBe(workspaceId);
          expect(seen["x-keymesh-scopes"]).toBe("read");
          expect(seen["x-keymesh-key-space-id"]).toBe(keySpaceId);
          expect(seen["x-keymesh-owner-type"]).toBe("organization");
          // An organization key acts for no member: the forged owner id is removed, not passed on.
          expect(seen["x-keymesh-owner-id"]).toBeUndefined();
        }),
        { numRuns: 12 },
      );
    });

    it("A request without a key is refused with 401 and a Bearer challenge, and never reaches the upstream", async () => {
      const before = upstream.hits();
      const res = await call("/v1/workspaces/me");
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Bearer realm="keymesh"');
      expect(res.headers.get("content-type")).toContain("application/json");
      expect(JSON.parse(res.text)).toMatchObject({ error: { code: "unauthenticated" } });
      expect(upstream.hits()).toBe(before);
    });

    it("An unknown or malformed key is refused with 401 invalid_token", async () => {
      const before = upstream.hits();
      for (const secret of ["ngx_0123456789abcdefghijklmnopqrstuvwxyzAB", "ngx_short", "not-even-ours"]) {
        const res = await call("/v1/workspaces/me", { secret });
        expect(res.status).toBe(401);
        expect(res.headers.get("www-authenticate")).toContain('error="invalid_token"');
      }
      expect(upstream.hits()).toBe(before);
    });

    it("A key lacking the route's scope is refused with 403", async () => {
      const key = await createKey(["read"]);
      const before = upstream.hits();
      const res = await call("/v1/reports", { method: "POST", secret: key.secret });
      expect(res.status).toBe(403);
      expect(JSON.parse(res.text)).toMatchObject({ error: { code: "forbidden" } });
      expect(upstream.hits()).toBe(before);
      const writer = await createKey(["write"]);
      expect((await call("/v1/reports", { method: "POST", secret: writer.secret })).status).toBe(200);
    });

    it("A client cannot choose what keymesh judges with X-Forwarded-*, X-Original-*, X-Keymesh-Scope, -Cost or -Key-Space", async () => {
      const reader = await createKey(["read"]);
      const policy = fc.record(
        {
          "x-forwarded-method": fc.constantFrom("GET", "HEAD", "OPTIONS"),
          "x-forwarded-uri": fc.constantFrom("/v1/public", "/", "/v1/workspaces/me"),
          "x-original-method": fc.constantFrom("GET", "HEAD"),
          "x-original-uri": fc.constantFrom("/v1/public", "/"),
          "x-keymesh-scope": fc.constantFrom("read", "read,write", "write"),
          "x-keymesh-key-space": fc.constantFrom("ngxfwd", "ngxapr", "keymesh"),
          "x-keymesh-cost": fc.constantFrom("0", "3"),
        },
        { requiredKeys: [] },
      );
      await fc.assert(
        fc.asyncProperty(policy, async (headers) => {
          const before = upstream.hits();
          const forged = await call("/v1/reports", { method: "POST", secret: reader.secret, headers });
          expect(forged.status).toBe(403);
          expect(upstream.hits()).toBe(before);
        }),
        { numRuns: 20 },
      );
      // A forged cost would drain the 3-token bucket at once; cleared, each request costs 1.
      const fresh = await createKey(["read"]);
      const costly = await call("/v1/workspaces/me", {
        secret: fresh.secret,
        headers: { "x-keymesh-cost": "3" },
      });
      expect(costly.status).toBe(200);
      expect(costly.headers.get("x-ratelimit-remaining")).toBe("2");
    });

    it("Over the key's rate limit the client gets 429 with Retry-After and X-RateLimit headers, not nginx's 500", async () => {
      const key = await createKey(["read"]);
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await call("/v1/workspaces/me", { secret: key.secret });
        expect(res.status).toBe(200);
        remaining.push(res.headers.get("x-ratelimit-remaining"));
      }
      expect(remaining).toEqual(["2", "1", "0"]);
      const before = upstream.hits();
      const limited = await call("/v1/workspaces/me", { secret: key.secret });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      expect(Number(limited.headers.get("retry-after"))).toBeLessThanOrEqual(60);
      expect(limited.headers.get("x-ratelimit-limit")).toBe("3");
      expect(limited.headers.get("x-ratelimit-remaining")).toBe("0");
      expect(JSON.parse(limited.text)).toMatchObject({ error: { code: "rate_limited" } });
      expect(upstream.hits()).toBe(before);
      // Another key has its own bucket.
      expect((await call("/v1/workspaces/me", { secret: (await createKey(["read"])).secret })).status).toBe(
        200,
      );
    });

    it("A location judges keys in its own key space only: a key of another one is refused", async () => {
      const other = await createKey(["read"], forwardingSpaceId);
      // Without the location's key space keymesh would infer the key's own one and allow it.
      expect((await call("/v1/things", { secret: other.secret, via: forwarding })).status).toBe(200);
      expect((await call("/v1/things", { secret: other.secret })).status).toBe(401);
      const mine = await createKey(["read"]);
      expect((await call("/v1/things", { secret: mine.secret, via: forwarding })).status).toBe(401);
    });

    it("With the README's minimal config nginx answers a keymesh 429 with 500 (why the error_page handler is needed)", async () => {
      const key = await createKey(["read"]);
      for (let i = 0; i < 3; i++)
        expect((await call("/v1/x", { secret: key.secret, via: readme })).status).toBe(200);
      const limited = await call("/v1/x", { secret: key.secret, via: readme });
      expect(limited.status).toBe(500);
      expect(limited.headers.get("retry-after")).toBeNull();
      expect(readme.errorLog()).toContain("auth request unexpected status: 429");
      // 401 and 403 do pass through it.
      expect((await call("/v1/x", { via: readme })).status).toBe(401);
      expect(
        (await call("/v1/x", { method: "POST", secret: (await createKey(["read"])).secret, via: readme }))
          .status,
      ).toBe(403);
    });
  },
);
