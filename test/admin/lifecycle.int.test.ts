import { Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStatus, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { stringify } from "../scenarios/support.js";
import { startTestServer, type TestServer } from "../support/server.js";

let t: TestServer;
let sql: postgres.Sql;
let keySpaceId: string;
let workspaceId: string;
let developerId: string;

async function codeOf(call: Promise<unknown>): Promise<Code | "ok"> {
  try {
    await call;
    return "ok";
  } catch (error) {
    return ConnectError.from(error).code;
  }
}

beforeAll(async () => {
  t = await startTestServer();
  sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
  const { keySpace } = await t.admin.createKeySpace({
    name: "trumpet",
    format: { prefix: "trpt_", workspaceSegment: true, style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["CreatePod", "ListPods"] },
    quotas: { maxKeysPerWorkspace: 100 },
    creatorRoles: ["Developer", "Admin"],
  });
  keySpaceId = keySpace!.id;
  const { workspace } = await t.admin.createWorkspace({
    name: "Acme",
    keySegment: "a1b2c3",
    apiAccess: true,
  });
  workspaceId = workspace!.id;
  const { member } = await t.admin.addMember({ workspaceId, name: "dev", role: "Developer" });
  developerId = member!.id;
});

afterAll(async () => {
  await sql?.end();
  await t?.stop();
});

function newKey(overrides: Record<string, unknown> = {}) {
  return t.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.USER,
    memberId: developerId,
    name: "ci",
    scopes: ["CreatePod"],
    ...overrides,
  });
}

describe("KeyAdmin access", () => {
  it("a call without a root key is UNAUTHENTICATED", async () => {
    expect(await codeOf(t.adminAs(undefined).listWorkspaces({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.adminAs("km_root_notakey").listWorkspaces({}))).toBe(Code.Unauthenticated);
  });

  it("a read-only root key may list but not change anything: PERMISSION_DENIED", async () => {
    const { secret } = await t.admin.createRootKey({ name: "auditor", scopes: ["admin:read"] });
    const reader = t.adminAs(secret);
    expect(await codeOf(reader.listWorkspaces({}))).toBe("ok");
    expect(await codeOf(reader.createWorkspace({ name: "x" }))).toBe(Code.PermissionDenied);
    expect(await codeOf(reader.createRootKey({ name: "escalate", scopes: ["admin:root"] }))).toBe(
      Code.PermissionDenied,
    );
  });

  it("a root key can only carry admin scopes", async () => {
    expect(await codeOf(t.admin.createRootKey({ name: "odd", scopes: ["CreatePod"] }))).toBe(
      Code.InvalidArgument,
    );
  });

  it("a bad field is INVALID_ARGUMENT naming the field", async () => {
    const error = await t.admin.createWorkspace({ name: "" }).catch((e: unknown) => ConnectError.from(e));
    expect(error).toBeInstanceOf(ConnectError);
    expect((error as ConnectError).code).toBe(Code.InvalidArgument);
    expect((error as ConnectError).rawMessage).toContain("name");
  });

  it("KeyAdmin answers over gRPC and gRPC-Web as well as Connect", async () => {
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${t.rootKey}`);
      return next(req);
    };
    for (const transport of [
      createGrpcTransport({ baseUrl: t.httpUrl, interceptors: [auth] }),
      createGrpcWebTransport({ baseUrl: t.httpUrl, httpVersion: "1.1", interceptors: [auth] }),
    ]) {
      const client = createClient(KeyAdmin, transport);
      expect((await client.listKeySpaces({})).keySpaces.map((s) => s.name)).toContain("trumpet");
    }
  });

  it("the first root key is created once; a second bootstrap creates nothing", async () => {
    expect(await t.server.core.admin.bootstrap()).toBeUndefined();
  });
});

describe("key lifecycle", () => {
  it("create returns the secret once; reads never show it, and the database holds no plaintext", async () => {
    const { key, secret } = await newKey();
    expect(secret).toMatch(/^trpt_a1b2c3_/);
    expect(key!.display.startsWith("trpt_a1b2c3_")).toBe(true);
    const { key: read } = await t.admin.getKey({ id: key!.id });
    expect(stringify(read)).not.toContain(secret);
    const dump = JSON.stringify(
      await sql`select (select json_agg(k) from keys k) as k, (select json_agg(a) from audit_events a) as a,
                       (select json_agg(i) from idempotency i) as i`,
    );
    expect(dump).not.toContain(secret);
    expect(dump).not.toContain(secret.slice(12, 30));
  });

  it("a retried create with the same idempotency key returns the same key, not a second one", async () => {
    const first = await newKey({ idempotencyKey: "req-1" });
    const second = await newKey({ idempotencyKey: "req-1" });
    expect(second.key!.id).toBe(first.key!.id);
    expect(second.secret).toBe(first.secret);
    expect(await codeOf(newKey({ idempotencyKey: "req-1", name: "other" }))).toBe(Code.FailedPrecondition);
  });

  it("only members with an allowed role may create keys", async () => {
    const { member } = await t.admin.addMember({ workspaceId, name: "viewer", role: "Viewer" });
    expect(await codeOf(newKey({ memberId: member!.id }))).toBe(Code.PermissionDenied);
  });

  it("a scope outside the key space's vocabulary is rejected, and new scopes are never added by themselves", async () => {
    expect(await codeOf(newKey({ scopes: ["DeletePod"] }))).toBe(Code.InvalidArgument);
    const { key } = await newKey({ scopes: ["CreatePod"] });
    await t.admin.updateKeySpace({
      id: keySpaceId,
      scopeModel: { scopes: ["CreatePod", "ListPods", "DeletePod"] },
    });
    expect((await t.admin.getKey({ id: key!.id })).key!.scopes).toEqual(["CreatePod"]);
  });

  it("update changes name, scopes and metadata", async () => {
    const { key } = await newKey();
    const { key: updated } = await t.admin.updateKey({
      id: key!.id,
      name: "renamed",
      scopes: { values: ["CreatePod", "ListPods"] },
      metadata: { team: "infra" },
    });
    expect(updated).toMatchObject({
      name: "renamed",
      scopes: ["CreatePod", "ListPods"],
      metadata: { team: "infra" },
    });
  });

  it("rotate issues a new secret and public part; with zero grace the old key is revoked at once", async () => {
    const { key, secret } = await newKey();
    const rotated = await t.admin.rotateKey({ id: key!.id, graceSeconds: 0n });
    expect(rotated.secret).not.toBe(secret);
    expect(rotated.key!.display).not.toBe(key!.display);
    expect(rotated.key!.rotatedFromId).toBe(key!.id);
    expect(rotated.previous).toMatchObject({ rotatedToId: rotated.key!.id, status: KeyStatus.REVOKED });
    expect(await codeOf(t.admin.activateKey({ id: key!.id }))).toBe(Code.FailedPrecondition);
  });

  it("rotate with a grace period keeps the old key active until the grace ends", async () => {
    const { key } = await newKey();
    const rotated = await t.admin.rotateKey({ id: key!.id, graceSeconds: 86_400n });
    expect(rotated.previous!.status).toBe(KeyStatus.ACTIVE);
    const expires = Number(rotated.previous!.expiresAt!.seconds) * 1000;
    expect(Math.abs(expires - (Date.now() + 86_400_000))).toBeLessThan(60_000);
  });

  it("revoke keeps the key listed, and activate restores it unchanged", async () => {
    const { key } = await newKey();
    const { key: revoked } = await t.admin.revokeKey({ id: key!.id });
    expect(revoked!.status).toBe(KeyStatus.REVOKED);
    const listed = await t.admin.listKeys({ workspaceId, status: KeyStatus.REVOKED, pageSize: 1000 });
    expect(listed.keys.map((k) => k.id)).toContain(key!.id);
    const { key: active } = await t.admin.activateKey({ id: key!.id });
    expect(active).toMatchObject({ status: KeyStatus.ACTIVE, display: key!.display, scopes: key!.scopes });
  });

  it("delete is permanent, revokes first and removes usage history; the audit log keeps the record", async () => {
    const { key } = await newKey();
    await sql`insert into key_usage (key_id, day, requests) values (${key!.id}, current_date, 5)`;
    await t.admin.deleteKey({ id: key!.id });
    expect(await codeOf(t.admin.getKey({ id: key!.id }))).toBe(Code.NotFound);
    expect(await sql`select 1 from key_usage where key_id = ${key!.id}`).toHaveLength(0);
    const { events } = await t.admin.listAuditEvents({ targetId: key!.id });
    expect(events.map((e) => e.action)).toEqual(["key.delete", "key.create"]);
    expect(events[0]!.before).toMatchObject({ id: key!.id });
  });

  it("expiry is a date or never, and a date in the past is refused", async () => {
    const never = await newKey();
    expect(never.key!.expiresAt).toBeUndefined();
    const past = { seconds: BigInt(Math.floor(Date.now() / 1000) - 10), nanos: 0 };
    expect(await codeOf(newKey({ expiresAt: past }))).toBe(Code.InvalidArgument);
    const soon = { seconds: BigInt(Math.floor(Date.now() / 1000) + 3600), nanos: 0 };
    expect((await newKey({ expiresAt: soon })).key!.expiresAt!.seconds).toBe(soon.seconds);
  });

  it("list is paginated and filterable by owner, with created times", async () => {
    const { member } = await t.admin.addMember({ workspaceId, name: "pager", role: "Admin" });
    for (let i = 0; i < 3; i++) await newKey({ memberId: member!.id, name: `p${i}` });
    const first = await t.admin.listKeys({ ownerMemberId: member!.id, pageSize: 2 });
    expect(first.keys).toHaveLength(2);
    expect(first.nextPageToken).not.toBe("");
    const second = await t.admin.listKeys({
      ownerMemberId: member!.id,
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect(second.keys.map((k) => k.name)).toEqual(["p2"]);
    expect(second.nextPageToken).toBe("");
    expect(first.keys[0]!.createdAt).toBeDefined();
    expect(await codeOf(t.admin.listKeys({ pageToken: "forged" }))).toBe(Code.InvalidArgument);
  });

  it("every mutation is in the audit log with its actor, and no audit entry holds a secret", async () => {
    const { key, secret } = await newKey();
    await t.admin.updateKey({ id: key!.id, name: "audited" });
    const { events } = await t.admin.listAuditEvents({ targetId: key!.id });
    expect(events.map((e) => e.action)).toEqual(["key.update", "key.create"]);
    expect(events[0]!.actor).toMatch(/^key_/);
    expect(events[0]!.before).toMatchObject({ name: "ci" });
    expect(events[0]!.after).toMatchObject({ name: "audited" });
    expect(stringify(events)).not.toContain(secret);
  });
});

describe("quotas", () => {
  it("50 racing creates against a quota of 3 create exactly 3 keys, and failures write nothing", async () => {
    const { keySpace } = await t.admin.createKeySpace({
      name: "trophy-race",
      format: { style: KeyStyle.PREFIX_DOT_SECRET },
      credentialSources: [{ kind: CredentialSourceKind.HEADER, header: "x-api-key" }],
      quotas: { maxKeysPerWorkspace: 3 },
    });
    const { workspace } = await t.admin.createWorkspace({ name: "racer", apiAccess: true });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        codeOf(
          t.admin.createKey({
            keySpaceId: keySpace!.id,
            workspaceId: workspace!.id,
            ownerType: OwnerType.ORGANIZATION,
            name: `k${i}`,
          }),
        ),
      ),
    );
    expect(results.filter((r) => r === "ok")).toHaveLength(3);
    expect(results.filter((r) => r === Code.ResourceExhausted)).toHaveLength(47);
    const keys = await sql<
      { n: number }[]
    >`select count(*)::int as n from keys where workspace_id = ${workspace!.id}`;
    expect(keys[0]!.n).toBe(3);
    const audits = await sql<{ a: number }[]>`
      select count(*)::int as a from audit_events where action = 'key.create' and after->>'workspaceId' = ${workspace!.id}`;
    expect(audits[0]!.a).toBe(3);
  });
});
