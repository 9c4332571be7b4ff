import { createServer, type Server } from "node:http";
import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ApprovalStatus,
  CredentialSourceKind,
  KeyStatus,
  KeyStyle,
  OwnerType,
} from "../../gen/keymesh/v1/types_pb.js";
import { VerifyCode } from "../../gen/keymesh/v1/verify_pb.js";
import { verifyWebhook } from "../../src/webhooks/sign.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { burst, codeOf, errorOf, gateway, stringify } from "./support.js";

// ../shared/seeds/001: TrustPager, configured entirely through KeyAdmin and exercised through Envoy Check.
let t: TestServer;
let gw: ReturnType<typeof gateway>;
let keySpaceId: string;
let workspaceId: string;
let hooks: { server: Server; url: string; received: { body: string; signature: string }[] };

const records = {
  name: "records",
  levels: ["read", "write-approval", "write", "delete-approval", "delete"],
  approvalOf: { "write-approval": "write", "delete-approval": "delete" },
};
const communication = {
  name: "communication",
  resources: ["email", "sms", "calls"],
  levels: ["read", "send-approval", "send"],
  approvalOf: { "send-approval": "send" },
};
const ai = {
  name: "ai",
  resources: ["ai"],
  levels: ["use-approval", "use"],
  approvalOf: { "use-approval": "use" },
};
const adminOnly = {
  name: "admin-only",
  resources: ["settings", "billing", "users", "integrations"],
  levels: ["read", "write"],
  adminOnly: true,
};

beforeAll(async () => {
  t = await startTestServer({
    redis: true,
    env: { KEYMESH_WEBHOOK_POLL_MS: "50", KEYMESH_WEBHOOK_BACKOFF_MS: "50" },
  });
  const { keySpace } = await t.admin.createKeySpace({
    name: "trustpager",
    format: { prefix: "tp_live_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { fullAccessScope: "admin", ladders: [communication, ai, adminOnly, records] },
    routes: [
      { method: "GET", path: "/api/contacts/**", scopes: ["contacts:read"] },
      { method: "POST", path: "/api/contacts", scopes: ["contacts:write"] },
      { method: "DELETE", path: "/api/contacts/*", scopes: ["contacts:delete"] },
      { method: "POST", path: "/api/email/send", scopes: ["email:send"] },
      { method: "POST", path: "/api/ai/run", scopes: ["ai:use"] },
      { method: "GET", path: "/api/settings", scopes: ["settings:read"] },
    ],
    defaultKeyLimits: [
      { name: "minute", capacity: 120n, periodSeconds: 60n },
      { name: "day", capacity: 50_000n, periodSeconds: 86_400n },
    ],
  });
  keySpaceId = keySpace!.id;
  workspaceId = (await t.admin.createWorkspace({ name: "Plumbing Co", plan: "pro", apiAccess: true }))
    .workspace!.id;
  gw = gateway(t, "trustpager");
  const received: { body: string; signature: string }[] = [];
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      received.push({ body, signature: String(req.headers["x-keymesh-signature"]) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  hooks = { server, url: `http://127.0.0.1:${port}/rejections`, received };
});

afterAll(async () => {
  gw?.close();
  hooks?.server.close();
  await t?.stop();
});

const create = (scopes: string[], extra: Record<string, unknown> = {}) =>
  t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    name: "Claude Desktop",
    scopes,
    ...extra,
  });
const call = (
  secret: string,
  method: string,
  path: string,
  extra: { body?: string; headers?: Record<string, string> } = {},
) =>
  gw.request(
    method,
    path,
    { authorization: `Bearer ${secret}`, ...extra.headers },
    { body: extra.body ?? "" },
  );

describe("TrustPager", () => {
  it("The key starts with tp_live_ and will only be shown once", async () => {
    const { key, secret } = await create(["contacts:read"]);
    expect(secret).toMatch(/^tp_live_/);
    expect(stringify(await t.admin.listKeys({ workspaceId }))).not.toContain(secret);
    expect(key!.display).not.toBe(secret);
  });

  it("Full Access (Admin): the key can do everything your workspace admin can do", async () => {
    const { secret } = await create(["admin"]);
    expect((await call(secret, "DELETE", "/api/contacts/42")).status).toBe(200);
    expect((await call(secret, "GET", "/api/settings")).status).toBe(200);
    expect((await call(secret, "POST", "/api/email/send")).status).toBe(200);
  });

  it("Custom scopes set a level per resource: read lists and fetches, and anything more is 403", async () => {
    const { secret } = await create(["contacts:read"]);
    expect((await call(secret, "GET", "/api/contacts/42")).status).toBe(200);
    const denied = await call(secret, "POST", "/api/contacts");
    expect(denied.status).toBe(403);
    expect(errorOf(denied).code).toBe("insufficient_scope");
    expect((await call(secret, "GET", "/api/settings")).status).toBe(403);
  });

  it("Write with Approval: creates are queued for a human to approve before they go through", async () => {
    const { key, secret } = await create(["contacts:write-approval"]);
    expect((await call(secret, "GET", "/api/contacts/1")).status).toBe(200);
    const body = JSON.stringify({ name: "Jane" });
    const queued = await call(secret, "POST", "/api/contacts", { body });
    expect(queued.status).toBe(202);
    const { approval } = JSON.parse(queued.body) as { approval: { id: string; status: string } };
    expect(approval.status).toBe("pending");
    const tab = await t.admin.listApprovals({ workspaceId, status: ApprovalStatus.PENDING });
    const pending = tab.approvals.find((a) => a.id === approval.id)!;
    expect(pending).toMatchObject({ keyId: key!.id, method: "POST", path: "/api/contacts" });
    expect(Buffer.from(pending.body).toString()).toBe(body);
    expect(stringify(pending.headers)).not.toContain(secret);
    await t.admin.approveRequest({ id: approval.id });
    const retry = { body, headers: { "x-keymesh-approval": approval.id } };
    expect((await call(secret, "POST", "/api/contacts", retry)).status).toBe(200);
    expect((await call(secret, "POST", "/api/contacts", retry)).status).toBe(403);
  });

  it("An approval lets through only the same key, method, path and body", async () => {
    const { secret } = await create(["contacts:write-approval"]);
    const other = (await create(["contacts:write-approval"])).secret;
    const queued = await call(secret, "POST", "/api/contacts", { body: "a" });
    const id = (JSON.parse(queued.body) as { approval: { id: string } }).approval.id;
    await t.admin.approveRequest({ id });
    const header = { "x-keymesh-approval": id };
    expect((await call(secret, "POST", "/api/contacts", { body: "b", headers: header })).status).toBe(403);
    expect((await call(other, "POST", "/api/contacts", { body: "a", headers: header })).status).toBe(403);
    expect((await call(secret, "POST", "/api/contacts", { body: "a", headers: header })).status).toBe(200);
  });

  it("Communication resources use read, send-approval, send; AI features use use-approval, use", async () => {
    const { secret } = await create(["email:send-approval", "ai:use"]);
    expect((await call(secret, "POST", "/api/email/send")).status).toBe(202);
    expect((await call(secret, "POST", "/api/ai/run")).status).toBe(200);
    const sender = (await create(["email:send"])).secret;
    expect((await call(sender, "POST", "/api/email/send")).status).toBe(200);
  });

  it("When an approval is rejected, the rejection webhook receives the reason and the original request body", async () => {
    const created = await create(["contacts:delete-approval"]);
    const secret = created.secret;
    const { key } = await t.admin.updateKey({ id: created.key!.id, rejectionWebhookUrl: hooks.url });
    expect(key!.rejectionWebhookUrl).toBe(hooks.url);
    const body = JSON.stringify({ reason: "duplicate" });
    const queued = await call(secret, "DELETE", "/api/contacts/7", { body });
    const id = (JSON.parse(queued.body) as { approval: { id: string } }).approval.id;
    await t.admin.rejectRequest({ id, reason: "Not this customer" });
    await expect.poll(() => hooks.received.length, { timeout: 5000 }).toBeGreaterThan(0);
    const delivered = hooks.received.at(-1)!;
    const { secret: signing } = await t.admin.getWebhookSigningSecret({});
    expect(verifyWebhook(signing, delivered.body, delivered.signature)).toBe(true);
    expect(JSON.parse(delivered.body)).toMatchObject({
      event: "approval.rejected",
      data: {
        approvalId: id,
        reason: "Not this customer",
        request: { method: "DELETE", path: "/api/contacts/7", body },
      },
    });
    expect(
      (await call(secret, "DELETE", "/api/contacts/7", { body, headers: { "x-keymesh-approval": id } }))
        .status,
    ).toBe(403);
  });

  it("Every key is provisioned with 120 requests per minute and 50,000 requests per day; past them, 429", async () => {
    const { secret } = await create(["contacts:read"]);
    const started = Date.now();
    const verdict = await t.verify.verify({ key: secret, keySpaceId, scopes: ["contacts:read"] });
    expect(verdict.code).toBe(VerifyCode.VALID);
    const byName = Object.fromEntries(verdict.limits.map((l) => [l.name, l]));
    expect(byName.minute).toMatchObject({ limit: 120n, remaining: 119n });
    expect(byName.day).toMatchObject({ limit: 50_000n, remaining: 49_999n });
    const results = await burst(119, 16, () => call(secret, "GET", "/api/contacts/1"));
    expect(results.filter((r) => r.status !== 200 || r.responseHeaders["x-keymesh-warning"])).toEqual([]);
    // The minute bucket refills 2 tokens a second, so a few more may pass before it is empty.
    let extra = 0;
    let limited = await call(secret, "GET", "/api/contacts/1");
    while (limited.status === 200 && extra < 50) {
      extra++;
      limited = await call(secret, "GET", "/api/contacts/1");
    }
    expect(extra).toBeLessThanOrEqual(Math.ceil(((Date.now() - started) / 1000) * 2) + 1);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    const other = (await create(["contacts:read"])).secret;
    expect((await call(other, "GET", "/api/contacts/1")).status).toBe(200);
  });

  it("The daily limit of 50,000 requests holds on its own: with the minute limit lifted for the key, request 50,001 gets 429", async () => {
    // As support would for a key that needs more per minute: the key's own limits replace the defaults.
    const { secret } = await create(["contacts:read"], {
      limits: {
        limits: [
          { name: "minute", capacity: 1_000_000n, periodSeconds: 60n },
          { name: "day", capacity: 50_000n, periodSeconds: 86_400n },
        ],
      },
    });
    const started = Date.now();
    const results = await burst(50_000, 16, () => call(secret, "GET", "/api/contacts/1"));
    expect(results.filter((r) => r.status !== 200 || r.responseHeaders["x-keymesh-warning"])).toHaveLength(0);
    // The day bucket refills 50,000 / 86,400 per second: under one token for each 1.7 s spent.
    let extra = 0;
    let limited = await call(secret, "GET", "/api/contacts/1");
    while (limited.status === 200 && extra < 100) {
      extra++;
      limited = await call(secret, "GET", "/api/contacts/1");
    }
    expect(extra).toBeLessThanOrEqual(Math.ceil(((Date.now() - started) / 1000) * (50_000 / 86_400)) + 1);
    expect(limited.status).toBe(429);
    expect(limited.headers["x-ratelimit-limit"]).toBe("50000");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
  }, 180_000);

  it("Edit a key: name, permission level and webhook change, with effect on the next API request", async () => {
    const { key, secret } = await create(["contacts:read"]);
    expect((await call(secret, "POST", "/api/contacts")).status).toBe(403);
    await t.admin.updateKey({
      id: key!.id,
      name: "Zapier",
      scopes: { values: ["contacts:write"] },
      rejectionWebhookUrl: hooks.url,
    });
    await expect.poll(async () => (await call(secret, "POST", "/api/contacts")).status).toBe(200);
    expect(await codeOf(t.admin.updateKey({ id: key!.id, rejectionWebhookUrl: "ftp://x" }))).toBe(
      Code.InvalidArgument,
    );
  });

  it("Revoke: requests with a revoked key get 401 at once; the key stays listed and can be re-activated", async () => {
    const { key, secret } = await create(["contacts:read"]);
    await t.admin.revokeKey({ id: key!.id });
    expect((await call(secret, "GET", "/api/contacts/1")).status).toBe(401);
    expect((await t.admin.getKey({ id: key!.id })).key!.status).toBe(KeyStatus.REVOKED);
    await t.admin.activateKey({ id: key!.id });
    expect((await call(secret, "GET", "/api/contacts/1")).status).toBe(200);
  });

  it("Delete permanently removes the key and all its usage history", async () => {
    const { key, secret } = await create(["contacts:read"]);
    await call(secret, "GET", "/api/contacts/1");
    await t.server.core.usage.flush();
    const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      expect(await sql`select 1 from key_usage where key_id = ${key!.id}`).toHaveLength(1);
      await t.admin.deleteKey({ id: key!.id });
      expect(await sql`select 1 from key_usage where key_id = ${key!.id}`).toHaveLength(0);
    } finally {
      await sql.end();
    }
    expect((await call(secret, "GET", "/api/contacts/1")).status).toBe(401);
    expect(await codeOf(t.admin.getKey({ id: key!.id }))).toBe(Code.NotFound);
  });

  it("API access requires the Pro plan: without it, calls are refused with a message about the plan", async () => {
    const free = (await t.admin.createWorkspace({ name: "Starter", plan: "starter", apiAccess: false }))
      .workspace!.id;
    const { secret } = await t.admin.createKey({
      keySpaceId,
      workspaceId: free,
      ownerType: OwnerType.ORGANIZATION,
      name: "k",
      scopes: ["admin"],
    });
    const refused = await call(secret, "GET", "/api/contacts/1");
    expect(refused.status).toBe(403);
    expect(errorOf(refused).message).toMatch(/plan/);
    await t.admin.updateWorkspace({ id: free, plan: "pro", apiAccess: true });
    await expect.poll(async () => (await call(secret, "GET", "/api/contacts/1")).status).toBe(200);
  });
});
