import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { burst, codeOf, errorOf, gateway, stringify } from "./support.js";

// ../shared/seeds/002: Trailmark, configured entirely through KeyAdmin and exercised through Envoy Check.
let t: TestServer;
let gw: ReturnType<typeof gateway>;
let keySpaceId: string;

beforeAll(async () => {
  t = await startTestServer({ redis: true });
  const { keySpace } = await t.admin.createKeySpace({
    name: "trailmark",
    format: { prefix: "tm_live_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { hierarchies: [{ scopes: ["read:workspace", "read:write:workspace", "admin:full"] }] },
    // Rules match first to last, so the billing rule comes before the catch-all ones.
    routes: [
      { method: "*", path: "/v1/billing/**", scopes: ["admin:full"] },
      { method: "GET", path: "/v1/**", scopes: ["read:workspace"] },
      { method: "POST", path: "/v1/**", scopes: ["read:write:workspace"] },
    ],
    defaultWorkspaceLimits: [{ name: "minute", capacity: 600n, periodSeconds: 60n }],
    creatorRoles: ["Developer", "Admin"],
    rotationGraceSeconds: 86_400n,
  });
  keySpaceId = keySpace!.id;
  gw = gateway(t, "trailmark");
});

afterAll(async () => {
  gw?.close();
  await t?.stop();
});

async function workspace(maxKeyAgeDays = 0) {
  const workspaceId = (
    await t.admin.createWorkspace({ name: "Acme Sales", plan: "team", apiAccess: true, maxKeyAgeDays })
  ).workspace!.id;
  const developer = (await t.admin.addMember({ workspaceId, name: "dev", role: "Developer" })).member!.id;
  return { workspaceId, developer };
}
const create = (w: { workspaceId: string; developer: string }, scopes = ["read:workspace"]) =>
  t.admin.createKey({
    keySpaceId,
    workspaceId: w.workspaceId,
    ownerType: OwnerType.USER,
    memberId: w.developer,
    name: "internal-reporting-pipeline",
    scopes,
  });
const me = (secret: string, method = "GET", path = "/v1/workspaces/me") =>
  gw.request(method, path, { authorization: `Bearer ${secret}`, accept: "application/json" });

describe("Trailmark", () => {
  it("Only members with the Developer or Admin role can create API keys", async () => {
    const w = await workspace();
    const viewer = (await t.admin.addMember({ workspaceId: w.workspaceId, name: "v", role: "Viewer" }))
      .member!.id;
    expect(await codeOf(create({ workspaceId: w.workspaceId, developer: viewer }))).toBe(
      Code.PermissionDenied,
    );
    const admin = (await t.admin.addMember({ workspaceId: w.workspaceId, name: "a", role: "Admin" })).member!
      .id;
    expect(await codeOf(create({ workspaceId: w.workspaceId, developer: admin }))).toBe("ok");
  });

  it("The key value begins with tm_live_ and is shown once", async () => {
    const w = await workspace();
    const { key, secret } = await create(w);
    expect(secret).toMatch(/^tm_live_[0-9A-Za-z]{30,}$/);
    expect(stringify(await t.admin.getKey({ id: key!.id }))).not.toContain(secret);
  });

  it("Scopes: read:workspace reads, read:write:workspace also writes, admin:full includes billing", async () => {
    const w = await workspace();
    const reader = (await create(w, ["read:workspace"])).secret;
    const writer = (await create(w, ["read:write:workspace"])).secret;
    const admin = (await create(w, ["admin:full"])).secret;
    expect((await me(reader)).status).toBe(200);
    expect((await me(reader, "POST", "/v1/reports")).status).toBe(403);
    expect((await me(writer, "POST", "/v1/reports")).status).toBe(200);
    expect((await me(writer, "GET", "/v1/billing/invoices")).status).toBe(403);
    expect((await me(admin, "GET", "/v1/billing/invoices")).status).toBe(200);
    expect((await me(admin, "POST", "/v1/reports")).status).toBe(200);
  });

  it("401 Unauthorized: the API key is missing, malformed, or invalid", async () => {
    expect((await gw.request("GET", "/v1/workspaces/me")).status).toBe(401);
    expect((await me("tm_live_short")).status).toBe(401);
    const res = await gw.request("GET", "/v1/workspaces/me", { authorization: "Bearer  tm_live_x" });
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toContain("Bearer");
  });

  it("The default rate limit is 600 requests per minute per workspace, with X-RateLimit headers and Retry-After on 429", async () => {
    const w = await workspace();
    const a = (await create(w)).secret;
    const b = (await create(w)).secret;
    const started = Date.now();
    const first = await me(a);
    expect(first.responseHeaders["x-ratelimit-limit"]).toBe("600");
    expect(first.responseHeaders["x-ratelimit-remaining"]).toBe("599");
    expect(Number(first.responseHeaders["x-ratelimit-reset"])).toBeGreaterThan(Date.now() / 1000 - 1);
    // The other requests come from a second key: the limit is shared by the whole workspace.
    const results = await burst(599, 32, () => me(b));
    const statuses = results.map(
      (r) => `${r.status} ${r.body} ${r.responseHeaders["x-keymesh-warning"] ?? ""}`,
    );
    expect(statuses.filter((s) => s !== "200  ").slice(0, 3)).toEqual([]);
    // A token bucket refills 10 tokens a second, so a few more pass before the bucket is empty.
    let extra = 0;
    let limited = await me(a);
    while (limited.status === 200 && extra < 200) {
      extra++;
      limited = await me(a);
    }
    expect(extra).toBeLessThanOrEqual(Math.ceil(((Date.now() - started) / 1000) * 10) + 1);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect(limited.headers["x-ratelimit-limit"]).toBe("600");
    expect(limited.headers["x-ratelimit-remaining"]).toBe("0");
    const other = await workspace();
    expect((await me((await create(other)).secret)).status).toBe(200);
  });

  it("Rotate issues a new value and the old value remains active for 24 hours; Revoke invalidates immediately", async () => {
    const w = await workspace();
    const { key, secret } = await create(w);
    const rotated = await t.admin.rotateKey({ id: key!.id });
    expect((await me(secret)).status).toBe(200);
    expect((await me(rotated.secret)).status).toBe(200);
    const graceEnds = Number(rotated.previous!.expiresAt!.seconds) * 1000;
    expect(Math.abs(graceEnds - Date.now() - 86_400_000)).toBeLessThan(60_000);
    await t.admin.revokeKey({ id: rotated.key!.id });
    expect((await me(rotated.secret)).status).toBe(401);
  });

  it("Workspaces can enforce rotation every 90 days: older keys are refused, keys near the limit carry a warning", async () => {
    const w = await workspace(90);
    const old = await create(w);
    const aging = await create(w);
    // Time travel: the only way to age a key is to move its creation date, here directly in the database.
    const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      await sql`update keys set created_at = now() - interval '91 days' where id = ${old.key!.id}`;
      await sql`update keys set created_at = now() - interval '86 days' where id = ${aging.key!.id}`;
      await sql`select pg_notify('keymesh_changes', ${JSON.stringify({ type: "workspace", id: w.workspaceId })})`;
    } finally {
      await sql.end();
    }
    const refused = await me(old.secret);
    expect(refused.status).toBe(401);
    expect(errorOf(refused)).toMatchObject({
      code: "key_too_old",
      message: expect.stringContaining("90-day"),
    });
    const warned = await me(aging.secret);
    expect(warned.status).toBe(200);
    expect(warned.responseHeaders["x-keymesh-warning"]).toMatch(/rotated within 4 days/);
  });
});
