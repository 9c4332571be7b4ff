import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStatus, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { codeOf, gateway, stringify } from "./support.js";

// ../shared/seeds/004: Trophy, configured entirely through KeyAdmin and exercised through Envoy Check.
let t: TestServer;
let gw: ReturnType<typeof gateway>;
let keySpaceId: string;

beforeAll(async () => {
  t = await startTestServer();
  const { keySpace } = await t.admin.createKeySpace({
    name: "trophy",
    format: { style: KeyStyle.PREFIX_DOT_SECRET },
    credentialSources: [{ kind: CredentialSourceKind.HEADER, header: "x-api-key" }],
    quotas: { maxKeysPerWorkspace: 3 },
    rotationGraceSeconds: 0n,
  });
  keySpaceId = keySpace!.id;
  gw = gateway(t, "trophy");
});

afterAll(async () => {
  gw?.close();
  await t?.stop();
});

async function account() {
  return (await t.admin.createWorkspace({ name: "account", apiAccess: true })).workspace!.id;
}
const create = (workspaceId: string) =>
  t.admin.createKey({ keySpaceId, workspaceId, ownerType: OwnerType.ORGANIZATION, name: "onboarding" });
const call = (key: string | undefined) =>
  gw.request("POST", "/v1/metrics/events", key === undefined ? {} : { "x-api-key": key });

describe("Trophy", () => {
  it("Each API key is made of 2 parts separated by a period: an 8-character readable prefix and a secret body shown once", async () => {
    const { key, secret } = await create(await account());
    const [prefix, body] = secret.split(".");
    expect(prefix).toHaveLength(8);
    expect(body!.length).toBeGreaterThanOrEqual(22);
    expect(key!.display).toBe(prefix);
    expect(stringify(await t.admin.getKey({ id: key!.id }))).not.toContain(body);
  });

  it("Both parts of your API key must be sent in the X-API-KEY header", async () => {
    const { secret } = await create(await account());
    expect((await call(secret)).status).toBe(200);
    expect((await call(secret.split(".")[1])).status).toBe(401);
    expect((await t.verify.verify({ key: secret, keySpaceId })).valid).toBe(true);
  });

  it("If you do not pass an API key, or your API key is invalid, you'll receive a 401 response code", async () => {
    expect((await call(undefined)).status).toBe(401);
    expect((await call("abcdefgh.notasecret")).status).toBe(401);
  });

  it("Every account can create a maximum of 3 API keys", async () => {
    const ws = await account();
    for (let i = 0; i < 3; i++) await create(ws);
    expect(await codeOf(create(ws))).toBe(Code.ResourceExhausted);
    expect(await codeOf(create(await account()))).toBe("ok");
  });

  it("Trophy keeps track of and displays when each API key was created and when it was last used", async () => {
    const { key, secret } = await create(await account());
    expect(key!.createdAt).toBeDefined();
    expect(key!.lastUsedAt).toBeUndefined();
    await call(secret);
    await expect
      .poll(async () => (await t.admin.getKey({ id: key!.id })).key!.lastUsedAt, { timeout: 3000 })
      .toBeDefined();
  });

  it("At rotation the original key no longer functions and gets 401 immediately; both the prefix and the body change", async () => {
    const { key, secret } = await create(await account());
    expect((await call(secret)).status).toBe(200);
    const rotated = await t.admin.rotateKey({ id: key!.id });
    expect(rotated.secret.split(".")[0]).not.toBe(secret.split(".")[0]);
    expect(rotated.secret.split(".")[1]).not.toBe(secret.split(".")[1]);
    expect((await call(secret)).status).toBe(401);
    expect((await call(rotated.secret)).status).toBe(200);
  });

  it("Revoked keys become Inactive and get 401 at once; they can be re-activated, and neither part changes", async () => {
    const { key, secret } = await create(await account());
    const { key: revoked } = await t.admin.revokeKey({ id: key!.id });
    expect(revoked!.status).toBe(KeyStatus.REVOKED);
    expect((await call(secret)).status).toBe(401);
    const { key: active } = await t.admin.activateKey({ id: key!.id });
    expect(active!.display).toBe(key!.display);
    expect((await call(secret)).status).toBe(200);
  });

  it("API keys can be deleted", async () => {
    const { key, secret } = await create(await account());
    await t.admin.deleteKey({ id: key!.id });
    expect((await call(secret)).status).toBe(401);
    expect(await codeOf(t.admin.getKey({ id: key!.id }))).toBe(Code.NotFound);
  });
});
