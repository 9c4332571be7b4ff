import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../../support/server.js";
import { type Echoed, type NginxHandle, nginxAvailable, startEchoUpstream, startNginx } from "./nginx.js";

/**
 * The nginx config keymesh needs behind `auth_request`, found by running Debian's nginx against keymesh:
 *
 * - nginx's auth_request passes only 2xx (allow) and 401/403 (deny) from the subrequest; ANY other status, including
 *   keymesh's 429 and 503, becomes a 500 ("auth request unexpected status: 429" in the error log). The status must be
 *   captured with `auth_request_set $km_status $upstream_status` and turned back into 429/503 in an `error_page`
 *   handler, which also re-adds Retry-After and the X-RateLimit-* headers (nginx drops every subrequest header except
 *   WWW-Authenticate). The subrequest's JSON body is always dropped, so the handler writes its own.
 * - The subrequest inherits ALL client headers. keymesh's /authz prefers X-Forwarded-Method/-Uri over
 *   X-Original-Method/-URI and honours X-Keymesh-Scope / X-Keymesh-Cost / X-Keymesh-Key-Space, so the auth location must
 *   clear them; otherwise a client picks the method, path or scopes keymesh judges.
 * - Only headers set with `proxy_set_header` from `auth_request_set` variables are trustworthy upstream; every identity
 *   header must be set that way (an empty value removes the client's copy), not just X-Keymesh-Key-Id.
 * - Removing the credential: keymesh sends `x-envoy-auth-headers-to-remove: authorization`; nginx has no generic way
 *   to apply it, but a `map` over that header can blank Authorization per request (one map per credential header).
 *   A key space with forward_credential keeps it. Custom credential headers need their own map (or a static
 *   `proxy_set_header X-Api-Key "";` when the key space never forwards them).
 */
function keymeshLocations(options: {
  keymeshPort: number;
  upstreamPort: number;
  path: string;
  keySpace: string;
}): string {
  const auth = `/_keymesh_${options.keySpace}`;
  const identity = ["key_id", "workspace_id", "owner_id", "owner_type", "scopes", "key_space_id"];
  const rateLimit = ["limit", "remaining", "reset"];
  const title = (name: string) =>
    name.replace(/(^|_)([a-z])/g, (_, sep: string, c: string) => `${sep ? "-" : ""}${c.toUpperCase()}`);
  return `
    location = ${auth} {
      internal;
      proxy_pass http://127.0.0.1:${options.keymeshPort}/authz?key_space=${options.keySpace};
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URI $request_uri;
      # keymesh reads these too, and the subrequest carries every client header: never let the client set them.
      proxy_set_header X-Forwarded-Method "";
      proxy_set_header X-Forwarded-Uri "";
      proxy_set_header X-Keymesh-Key-Space "";
      proxy_set_header X-Keymesh-Scope "";
      proxy_set_header X-Keymesh-Cost "";
    }
    location ${options.path} {
      auth_request ${auth};
      auth_request_set $km_status $upstream_status;
${identity.map((h) => `      auth_request_set $km_${h} $upstream_http_x_keymesh_${h};`).join("\n")}
      auth_request_set $km_remove $upstream_http_x_envoy_auth_headers_to_remove;
      auth_request_set $km_warning $upstream_http_x_keymesh_warning;
      auth_request_set $km_retry_after $upstream_http_retry_after;
${rateLimit.map((h) => `      auth_request_set $km_rl_${h} $upstream_http_x_ratelimit_${h};`).join("\n")}
      # Identity from keymesh only: each one overwrites (or, when empty, removes) a client-sent copy.
${identity.map((h) => `      proxy_set_header X-Keymesh-${title(h)} $km_${h};`).join("\n")}
      proxy_set_header Authorization $km_authorization;
${rateLimit.map((h) => `      add_header X-RateLimit-${title(h)} $km_rl_${h} always;`).join("\n")}
      add_header X-Keymesh-Warning $km_warning always;
      error_page 401 403 500 = @keymesh_denied;
      proxy_pass http://127.0.0.1:${options.upstreamPort};
    }`;
}

/** The http-level part: the Authorization map, the JSON denial handler, and one server. */
function recommendedConfig(port: number, locations: string): string {
  return `
  map $km_remove $km_authorization {
    "~*(^|,)\\s*authorization\\s*(,|$)" "";
    default $http_authorization;
  }
  server {
    listen 127.0.0.1:${port};
${locations}
    # auth_request turns every subrequest status but 2xx/401/403 into 500: restore keymesh's 429 and 503.
    location @keymesh_denied {
      default_type application/json;
      add_header Retry-After $km_retry_after always;
      add_header X-RateLimit-Limit $km_rl_limit always;
      add_header X-RateLimit-Remaining $km_rl_remaining always;
      add_header X-RateLimit-Reset $km_rl_reset always;
      if ($km_status = 401) { return 401 '{"error":{"code":"unauthenticated","message":"the API key is missing or not valid"}}\\n'; }
      if ($km_status = 403) { return 403 '{"error":{"code":"forbidden","message":"the API key may not do this"}}\\n'; }
      if ($km_status = 429) { return 429 '{"error":{"code":"rate_limited","message":"rate limit exceeded"}}\\n'; }
      if ($km_status = 503) { return 503 '{"error":{"code":"unavailable","message":"authorization is temporarily unavailable"}}\\n'; }
      return 500 '{"error":{"code":"internal","message":"authorization failed"}}\\n';
    }
  }`;
}

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

describe.skipIf(!enabled)("nginx auth_request in front of keymesh /authz", () => {
  let t: TestServer;
  let upstream: Awaited<ReturnType<typeof startEchoUpstream>>;
  let nginx: NginxHandle;
  let readme: NginxHandle;
  let keySpaceId: string;
  let forwardingSpaceId: string;
  let workspaceId: string;

  beforeAll(async () => {
    t = await startTestServer();
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
    nginx = await startNginx((port) =>
      recommendedConfig(
        port,
        keymeshLocations({ keymeshPort, upstreamPort: upstream.port, path: "/v1/", keySpace: "ngx" }) +
          keymeshLocations({ keymeshPort, upstreamPort: upstream.port, path: "/v2/", keySpace: "ngxfwd" }),
      ),
    );
    readme = await startNginx((port) => readmeConfig(port, keymeshPort, upstream.port));
  });

  afterAll(async () => {
    await readme?.stop();
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
    const res = await call("/v2/things", { secret: key.secret });
    expect(res.status).toBe(200);
    expect(res.upstreamSaw!.headers.authorization).toBe(`Bearer ${key.secret}`);
    expect(res.upstreamSaw!.headers["x-keymesh-key-space-id"]).toBe(forwardingSpaceId);
  });

  it("Identity headers forged by the client are overwritten with keymesh's values", async () => {
    const key = await createKey(["read"]);
    const res = await call("/v1/workspaces/me", {
      secret: key.secret,
      headers: {
        "x-keymesh-key-id": "forged",
        "x-keymesh-workspace-id": "forged",
        "x-keymesh-scopes": "admin",
        "x-keymesh-owner-id": "forged",
      },
    });
    expect(res.status).toBe(200);
    const seen = res.upstreamSaw!.headers;
    expect(seen["x-keymesh-key-id"]).toBe(key.id);
    expect(seen["x-keymesh-workspace-id"]).toBe(workspaceId);
    expect(seen["x-keymesh-scopes"]).toBe("read");
    expect(seen["x-keymesh-owner-id"]).not.toBe("forged");
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

  it("A client cannot choose what keymesh judges with X-Forwarded-*, X-Keymesh-Scope, -Cost or -Key-Space", async () => {
    const reader = await createKey(["read"]);
    const forged = await call("/v1/reports", {
      method: "POST",
      secret: reader.secret,
      headers: {
        "x-forwarded-method": "GET",
        "x-forwarded-uri": "/v1/public",
        "x-keymesh-scope": "read",
        "x-keymesh-key-space": "ngxfwd",
      },
    });
    expect(forged.status).toBe(403);
    // A forged cost would drain the 3-token bucket at once; cleared, each request costs 1.
    const costly = await call("/v1/workspaces/me", {
      secret: reader.secret,
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
});
