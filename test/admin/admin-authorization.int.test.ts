import { Code } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStatus, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { EXPECTED, meets, SCOPE_SETS, type TargetKind } from "./admin-expectations.js";
import {
  callByName,
  codeOf,
  createFixtures,
  DENIED,
  type Fixtures,
  ROOT_KEY_SPACE,
} from "./admin-fixtures.js";

let t: TestServer;
let sql: postgres.Sql;
let fixtures: Fixtures;
const callers = new Map<string, { id: string; client: TestServer["admin"] }>();
const label = (scopes: readonly string[]) => (scopes.length > 0 ? scopes.join("+") : "no scope");

beforeAll(async () => {
  t = await startTestServer();
  sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
  fixtures = await createFixtures(t, sql);
  for (const scopes of SCOPE_SETS) {
    const issued = await t.admin.createRootKey({ name: label(scopes), scopes: [...scopes, "admin:read"] });
    await t.admin.updateKey({ id: issued.key!.id, scopes: { values: [...scopes] } });
    callers.set(label(scopes), { id: issued.key!.id, client: t.adminAs(issued.secret) });
  }
});

afterAll(async () => {
  await sql?.end();
  await t?.stop();
});

// Generated from the service descriptor: a method added to KeyAdmin without an expectation and a fixture fails here.
const cases = KeyAdmin.methods.flatMap((method) => {
  const rule = EXPECTED[method.name];
  const targets = rule ? (Object.keys(rule) as TargetKind[]) : (["customer"] as TargetKind[]);
  return targets.flatMap((target) =>
    SCOPE_SETS.map((scopes) => {
      const allowed = meets(scopes, rule?.[target]);
      const title = `${method.name} on a ${target} target by a key with ${label(scopes)} is ${allowed ? "allowed" : "PERMISSION_DENIED"}`;
      return [title, { method, target, scopes, allowed }] as const;
    }),
  );
});

describe("KeyAdmin authorizes every method by the caller's own scopes and the target (needs Postgres)", () => {
  it("has an expected rule and a fixture for every KeyAdmin method", () => {
    for (const method of KeyAdmin.methods) {
      expect(EXPECTED[method.name], method.name).toBeDefined();
      for (const target of Object.keys(EXPECTED[method.name] ?? {}) as TargetKind[]) {
        expect(fixtures[method.name]?.[target], `${method.name} on a ${target} target`).toBeDefined();
      }
    }
  });

  it.each(cases)("%s", async (_title, { method, target, scopes, allowed }) => {
    const prepare = fixtures[method.name]?.[target];
    expect(prepare, "fixture").toBeDefined();
    const { request, state } = await prepare!();
    const before = await state();
    const result = await codeOf(callByName(callers.get(label(scopes))!.client, method.localName, request));
    expect(result).toBe(allowed ? "ok" : DENIED);
    // A refused call leaves its target as it was.
    if (!allowed) expect(await state()).toEqual(before);
  });
});

describe("the reported escalation and its neighbours are refused (needs Postgres)", () => {
  it("an admin:write root key cannot make itself admin:root, and stays admin:write", async () => {
    const { id, client } = callers.get("admin:write")!;
    expect(await codeOf(client.updateKey({ id, scopes: { values: ["admin:root"] } }))).toBe(DENIED);
    expect(await codeOf(client.updateKey({ id, scopes: { values: ["admin:write", "admin:root"] } }))).toBe(
      DENIED,
    );
    expect((await t.admin.getKey({ id })).key!.scopes).toEqual(["admin:write"]);
    expect(await codeOf(client.createRootKey({ name: "escalate", scopes: ["admin:root"] }))).toBe(DENIED);
  });

  it("an admin:write root key cannot list, rotate, revoke or delete the admin:root keys", async () => {
    const { client } = callers.get("admin:write")!;
    const rootKeyId = callers.get("admin:root")!.id;
    expect(await codeOf(client.listKeys({ keySpaceId: ROOT_KEY_SPACE }))).toBe(DENIED);
    expect(await codeOf(client.listKeys({ workspaceId: "ws_keymesh" }))).toBe(DENIED);
    for (const call of [client.rotateKey, client.revokeKey, client.deleteKey]) {
      expect(await codeOf(call({ id: rootKeyId }))).toBe(DENIED);
    }
    expect((await t.admin.getKey({ id: rootKeyId })).key!.status).toBe(KeyStatus.ACTIVE);
  });

  it("listing customer keys never shows root keys, whoever asks", async () => {
    for (const { client } of callers.values()) {
      const listed = await client.listKeys({}).catch(() => ({ keys: [] }));
      expect(listed.keys.filter((k) => k.keySpaceId === ROOT_KEY_SPACE)).toEqual([]);
    }
    const all = await t.admin.listKeys({ keySpaceId: ROOT_KEY_SPACE, pageSize: 1000 });
    expect(all.keys.length).toBeGreaterThanOrEqual(SCOPE_SETS.length);
  });

  it("audit events about root keys are left out for callers without admin:root", async () => {
    const reader = callers.get("admin:read+admin:write")!.client;
    const { events } = await reader.listAuditEvents({ pageSize: 1000 });
    const rootKeyIds = new Set(
      (await sql`select id from keys where key_space_id = ${ROOT_KEY_SPACE}`).map((r) => r.id),
    );
    expect(events.filter((e) => rootKeyIds.has(e.targetId))).toEqual([]);
    const seen = await t.admin.listAuditEvents({ pageSize: 1000 });
    expect(seen.events.some((e) => rootKeyIds.has(e.targetId))).toBe(true);
  });

  it("a key space named like the system key space's id neither stands in for it nor locks root keys out", async () => {
    await t.admin.createKeySpace({
      name: ROOT_KEY_SPACE,
      format: { prefix: "km_root_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    });
    // An update that moves the system key space's row (here a rename and back; a migration rewriting a full page
    // does the same) puts it behind the impostor, so a lookup taking whichever row came first finds the impostor.
    await sql`update key_spaces set name = 'keymesh-root-moved' where id = ${ROOT_KEY_SPACE}`;
    await sql`update key_spaces set name = 'keymesh-root' where id = ${ROOT_KEY_SPACE}`;
    const shadow = (await t.admin.getKeySpace({ id: ROOT_KEY_SPACE })).keySpace!;
    expect(shadow.name).toBe("keymesh-root");
    const { keySpaces } = await t.admin.listKeySpaces({ pageSize: 1000 });
    const impostorSpace = keySpaces.find((s) => s.name === ROOT_KEY_SPACE)!;
    const ws = (await t.admin.createWorkspace({ name: "impostor" })).workspace!.id;
    const { secret } = await t.admin.createKey({
      keySpaceId: impostorSpace.id,
      workspaceId: ws,
      ownerType: OwnerType.ORGANIZATION,
      name: "impostor",
      scopes: ["admin:root"],
    });
    expect(await codeOf(t.adminAs(secret).getWebhookSigningSecret({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(t.admin.getWebhookSigningSecret({}))).toBe("ok");
  });
});
