import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStatus, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { codeOf, errorOf, gateway, stringify } from "./support.js";

// ../shared/seeds/000: trumpet, configured entirely through KeyAdmin and exercised through Envoy Check.
let t: TestServer;
let gw: ReturnType<typeof gateway>;
let keySpaceId: string;
let workspaceId: string;

beforeAll(async () => {
  t = await startTestServer();
  const { keySpace } = await t.admin.createKeySpace({
    name: "trumpet",
    format: { prefix: "trpt_", workspaceSegment: true, style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["CreatePod"] },
    routes: [{ method: "POST", path: "/api/v1/pods/new", scopes: ["CreatePod"] }],
  });
  keySpaceId = keySpace!.id;
  workspaceId = (await t.admin.createWorkspace({ name: "Acme", keySegment: "a1b2c3", apiAccess: true }))
    .workspace!.id;
  gw = gateway(t, "trumpet");
});

afterAll(async () => {
  gw?.close();
  await t?.stop();
});

const create = (scopes: string[], name = "CRM sync") =>
  t.admin.createKey({ keySpaceId, workspaceId, ownerType: OwnerType.ORGANIZATION, name, scopes });
const createPod = (secret: string | undefined) =>
  gw.request("POST", "/api/v1/pods/new", secret === undefined ? {} : { authorization: `Bearer ${secret}` });

describe("trumpet", () => {
  it("Every API key starts with the trpt_ prefix, followed by a short brand identifier and a cryptographically random string", async () => {
    const { secret } = await create(["CreatePod"]);
    expect(secret).toMatch(/^trpt_a1b2c3_[0-9A-Za-z]{30,}$/);
  });

  it("Every request must include a valid API key in the Authorization header, using the Bearer scheme", async () => {
    const { key, secret } = await create(["CreatePod"]);
    const ok = await createPod(secret);
    expect(ok.status).toBe(200);
    expect(ok.headers["x-keymesh-key-id"]).toBe(key!.id);
    expect(ok.removed).toContain("authorization");
  });

  it("CreatePod allows POST /v1/pods; a key lacking the required scope gets 403 Forbidden", async () => {
    const { secret } = await create([]);
    const denied = await createPod(secret);
    expect(denied.status).toBe(403);
    expect(errorOf(denied).code).toBe("insufficient_scope");
  });

  it("401 Unauthorized: missing or invalid API key", async () => {
    expect((await createPod(undefined)).status).toBe(401);
    expect((await createPod("trpt_a1b2c3_not-a-real-key")).status).toBe(401);
    const { secret } = await create(["CreatePod"]);
    expect((await gw.request("POST", "/api/v1/pods/new", { authorization: `Token ${secret}` })).status).toBe(
      401,
    );
  });

  it("Create keys: generate a new key with a name and scopes; the raw key is shown only once", async () => {
    const { key, secret } = await create(["CreatePod"], "Zapier");
    expect(key).toMatchObject({ name: "Zapier", scopes: ["CreatePod"] });
    const listed = await t.admin.listKeys({ workspaceId, pageSize: 1000 });
    expect(stringify(listed)).not.toContain(secret);
    expect(stringify(await t.admin.getKey({ id: key!.id }))).not.toContain(secret);
  });

  it("Revoke keys: the key remains visible in your list for auditing but stops working instantly", async () => {
    const { key, secret } = await create(["CreatePod"]);
    expect((await createPod(secret)).status).toBe(200);
    await t.admin.revokeKey({ id: key!.id });
    expect((await createPod(secret)).status).toBe(401);
    const listed = await t.admin.listKeys({ workspaceId, pageSize: 1000 });
    expect(listed.keys.find((k) => k.id === key!.id)?.status).toBe(KeyStatus.REVOKED);
  });

  it("Delete keys: permanently remove a key from your list; the key is also revoked if it wasn't already", async () => {
    const { key, secret } = await create(["CreatePod"]);
    await t.admin.deleteKey({ id: key!.id });
    expect((await createPod(secret)).status).toBe(401);
    expect(await codeOf(t.admin.getKey({ id: key!.id }))).toBe(Code.NotFound);
    const listed = await t.admin.listKeys({ workspaceId, pageSize: 1000 });
    expect(listed.keys.map((k) => k.id)).not.toContain(key!.id);
  });

  it("Your existing keys will not gain new scopes automatically: you'll need to create new keys or update existing ones", async () => {
    const { key, secret } = await create(["CreatePod"]);
    await t.admin.updateKeySpace({
      id: keySpaceId,
      scopeModel: { scopes: ["CreatePod", "ListPods"] },
      routes: {
        rules: [
          { method: "POST", path: "/api/v1/pods/new", scopes: ["CreatePod"] },
          { method: "GET", path: "/api/v1/pods", scopes: ["ListPods"] },
        ],
      },
    });
    const auth = { authorization: `Bearer ${secret}` };
    await expect.poll(async () => (await gw.request("GET", "/api/v1/pods", auth)).status).toBe(403);
    await t.admin.updateKey({ id: key!.id, scopes: { values: ["CreatePod", "ListPods"] } });
    await expect.poll(async () => (await gw.request("GET", "/api/v1/pods", auth)).status).toBe(200);
  });
});
