import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, MemberStatus, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { basic, codeOf, gateway, stringify } from "./support.js";

// ../shared/seeds/003: Trint, configured entirely through KeyAdmin and exercised through Envoy Check.
let t: TestServer;
let gw: ReturnType<typeof gateway>;
let legacy: ReturnType<typeof gateway>;
let keySpaceId: string;
let legacySpaceId: string;

beforeAll(async () => {
  t = await startTestServer();
  const { keySpace } = await t.admin.createKeySpace({
    name: "trint",
    format: { style: KeyStyle.ID_SECRET, idPrefix: "AK-" },
    credentialSources: [{ kind: CredentialSourceKind.BASIC }],
    quotas: { maxUserKeysPerMember: 25, maxOrganizationKeysPerWorkspace: 25 },
  });
  keySpaceId = keySpace!.id;
  const legacySpace = await t.admin.createKeySpace({
    name: "trint-legacy",
    format: { style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.HEADER, header: "api-key" }],
  });
  legacySpaceId = legacySpace.keySpace!.id;
  gw = gateway(t, "trint");
  legacy = gateway(t, "trint-legacy");
});

afterAll(async () => {
  gw?.close();
  legacy?.close();
  await t?.stop();
});

async function account() {
  const workspaceId = (await t.admin.createWorkspace({ name: "account", apiAccess: true })).workspace!.id;
  const owner = (await t.admin.addMember({ workspaceId, name: "owner", role: "Admin", accountOwner: true }))
    .member!.id;
  const user = (await t.admin.addMember({ workspaceId, name: "user", role: "Member" })).member!.id;
  return { workspaceId, owner, user };
}
const userKey = (workspaceId: string, memberId: string) =>
  t.admin.createKey({ keySpaceId, workspaceId, ownerType: OwnerType.USER, memberId, name: "user key" });
const orgKey = (workspaceId: string, memberId: string) =>
  t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    memberId,
    name: "org key",
  });
const transcripts = (authorization: string) =>
  gw.request("GET", "/transcripts/?limit=100&skip=0", { authorization, accept: "application/json" });

describe("Trint", () => {
  it("API keys come in two parts: a Key ID that remains visible, and a Key Secret shown only at creation", async () => {
    const a = await account();
    const { key, secret } = await userKey(a.workspaceId, a.user);
    expect(key!.display).toMatch(/^AK-[0-9A-Z]{10}$/);
    expect((await t.admin.getKey({ id: key!.id })).key!.display).toBe(key!.display);
    expect(stringify(await t.admin.listKeys({ workspaceId: a.workspaceId }))).not.toContain(secret);
  });

  it("Each API call is authenticated using Basic Authentication with the Key ID as user-id and the Key Secret as password", async () => {
    const a = await account();
    const { key, secret } = await userKey(a.workspaceId, a.user);
    expect((await transcripts(basic(key!.display, secret))).status).toBe(200);
    const wrong = `${secret.slice(0, -1)}${secret.endsWith("x") ? "y" : "x"}`;
    expect((await transcripts(basic(key!.display, wrong))).status).toBe(401);
    expect((await transcripts(`Bearer ${secret}`)).status).toBe(401);
  });

  it("Users can create up to 25 USER keys, and up to 25 ORGANIZATION keys shared across the whole account", async () => {
    const a = await account();
    await Promise.all(Array.from({ length: 25 }, () => userKey(a.workspaceId, a.user)));
    expect(await codeOf(userKey(a.workspaceId, a.user))).toBe(Code.ResourceExhausted);
    expect(await codeOf(userKey(a.workspaceId, a.owner))).toBe("ok");
    await Promise.all(Array.from({ length: 25 }, () => orgKey(a.workspaceId, a.owner)));
    expect(await codeOf(orgKey(a.workspaceId, a.owner))).toBe(Code.ResourceExhausted);
  });

  it("USER keys are disabled when their user closes their account, while ORGANIZATION keys remain", async () => {
    const a = await account();
    const mine = await userKey(a.workspaceId, a.user);
    const shared = await orgKey(a.workspaceId, a.user);
    await t.admin.updateMember({ id: a.user, status: MemberStatus.CLOSED });
    await expect
      .poll(async () => (await transcripts(basic(mine.key!.display, mine.secret))).status)
      .toBe(401);
    expect((await transcripts(basic(shared.key!.display, shared.secret))).status).toBe(200);
  });

  it("An ORGANIZATION key assumes the identity of the account owner, not of the user who created it", async () => {
    const a = await account();
    const shared = await orgKey(a.workspaceId, a.user);
    const res = await transcripts(basic(shared.key!.display, shared.secret));
    expect(res.headers["x-keymesh-owner-id"]).toBe(a.owner);
    const mine = await userKey(a.workspaceId, a.user);
    expect((await transcripts(basic(mine.key!.display, mine.secret))).headers["x-keymesh-owner-id"]).toBe(
      a.user,
    );
  });

  it("Keys can be created with an expiry date, after which they stop working, or set to never expire", async () => {
    const a = await account();
    const expiresAt = { seconds: BigInt(Math.floor(Date.now() / 1000) + 2), nanos: 0 };
    const expiring = await t.admin.createKey({
      keySpaceId,
      workspaceId: a.workspaceId,
      ownerType: OwnerType.USER,
      memberId: a.user,
      name: "e",
      expiresAt,
    });
    const forever = await userKey(a.workspaceId, a.user);
    expect(forever.key!.expiresAt).toBeUndefined();
    expect((await transcripts(basic(expiring.key!.display, expiring.secret))).status).toBe(200);
    await expect
      .poll(async () => (await transcripts(basic(expiring.key!.display, expiring.secret))).status, {
        timeout: 5000,
        interval: 200,
      })
      .toBe(401);
    expect((await transcripts(basic(forever.key!.display, forever.secret))).status).toBe(200);
  });

  it("Legacy keys have a single value, sent as an api-key header", async () => {
    const a = await account();
    const { secret } = await t.admin.createKey({
      keySpaceId: legacySpaceId,
      workspaceId: a.workspaceId,
      ownerType: OwnerType.ORGANIZATION,
      name: "Zapier",
    });
    const ok = await legacy.request("GET", "/transcripts/?limit=100&skip=0", {
      "api-key": secret,
      accept: "application/json",
    });
    expect(ok.status).toBe(200);
    expect(ok.removed).toContain("api-key");
    expect(
      (await legacy.request("GET", "/transcripts/", { "api-key": "LEGACY_API_KEY_GOES_HERE" })).status,
    ).toBe(401);
  });

  it("Replacement keys can be created and revoked to rotate credentials at the time of your choosing", async () => {
    const a = await account();
    const old = await userKey(a.workspaceId, a.user);
    const replacement = await userKey(a.workspaceId, a.user);
    await t.admin.revokeKey({ id: old.key!.id });
    expect((await transcripts(basic(old.key!.display, old.secret))).status).toBe(401);
    expect((await transcripts(basic(replacement.key!.display, replacement.secret))).status).toBe(200);
  });
});
