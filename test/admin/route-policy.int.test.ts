import { readFile } from "node:fs/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType, UnmatchedRoutes } from "../../gen/keymesh/v1/types_pb.js";
import { migrate } from "../../src/store/migrate.js";
import { gateway } from "../scenarios/support.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { startTestServer, type TestServer } from "../support/server.js";

const space = (name: string) => ({
  name,
  format: { prefix: "pol_", style: KeyStyle.SINGLE },
  credentialSources: [{ kind: CredentialSourceKind.BEARER }],
  scopeModel: { scopes: ["things:read"] },
  routes: [{ method: "GET", path: "/things/*", scopes: ["things:read"] }],
});

async function keyIn(t: TestServer, keySpaceId: string): Promise<string> {
  const { workspace } = await t.admin.createWorkspace({ name: "Acme", apiAccess: true });
  const { secret } = await t.admin.createKey({
    keySpaceId,
    workspaceId: workspace!.id,
    ownerType: OwnerType.ORGANIZATION,
    name: "k",
    scopes: ["things:read"],
  });
  return secret;
}

describe("route policy settings in KeyAdmin (needs Postgres)", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await t?.stop();
  });

  it("a new key space refuses unmatched paths unless it says otherwise, and Get and List show the settings", async () => {
    const { keySpace: strict } = await t.admin.createKeySpace(space("strict"));
    expect(strict).toMatchObject({ unmatchedRoutes: UnmatchedRoutes.DENY, caseInsensitiveRoutes: false });
    const { keySpace: open } = await t.admin.createKeySpace({
      ...space("open"),
      unmatchedRoutes: UnmatchedRoutes.ALLOW,
      caseInsensitiveRoutes: true,
    });
    expect((await t.admin.getKeySpace({ id: open!.id })).keySpace).toMatchObject({
      unmatchedRoutes: UnmatchedRoutes.ALLOW,
      caseInsensitiveRoutes: true,
    });
    const listed = (await t.admin.listKeySpaces({ pageSize: 100 })).keySpaces;
    expect(listed.find((s) => s.id === strict!.id)?.unmatchedRoutes).toBe(UnmatchedRoutes.DENY);
    expect(listed.find((s) => s.id === open!.id)?.unmatchedRoutes).toBe(UnmatchedRoutes.ALLOW);
  });

  it("UpdateKeySpace changes both settings with effect on Check, and keeps them when they are left unset", async () => {
    const { keySpace } = await t.admin.createKeySpace(space("updated"));
    const id = keySpace!.id;
    const secret = await keyIn(t, id);
    const gw = gateway(t, "updated");
    const auth = { authorization: `Bearer ${secret}` };
    try {
      expect((await gw.request("GET", "/other", auth)).status).toBe(403);
      expect((await gw.request("GET", "/THINGS/1", auth)).status).toBe(403);
      const { keySpace: after } = await t.admin.updateKeySpace({
        id,
        unmatchedRoutes: UnmatchedRoutes.ALLOW,
        caseInsensitiveRoutes: true,
      });
      expect(after).toMatchObject({ unmatchedRoutes: UnmatchedRoutes.ALLOW, caseInsensitiveRoutes: true });
      await expect.poll(async () => (await gw.request("GET", "/other", auth)).status).toBe(200);
      expect((await gw.request("GET", "/THINGS/1", auth)).status).toBe(200);
      const { keySpace: renamed } = await t.admin.updateKeySpace({ id, name: "updated" });
      expect(renamed).toMatchObject({ unmatchedRoutes: UnmatchedRoutes.ALLOW, caseInsensitiveRoutes: true });
      await t.admin.updateKeySpace({ id, unmatchedRoutes: UnmatchedRoutes.DENY });
      await expect.poll(async () => (await gw.request("GET", "/other", auth)).status).toBe(403);
    } finally {
      gw.close();
    }
  });

  it("refuses a route rule whose path is not in normal form, naming routes", async () => {
    for (const path of [
      "/things/../x",
      "/things//x",
      "/things/%7Eme",
      "/things/%2F",
      "/things/x?y",
      "/a/%c3%a9",
    ]) {
      const error = await t.admin
        .createKeySpace({ ...space(`bad-${path.length}`), routes: [{ method: "GET", path, scopes: [] }] })
        .then(
          () => undefined,
          (e: unknown) => ConnectError.from(e),
        );
      expect(error?.code, path).toBe(Code.InvalidArgument);
      expect(error?.rawMessage, path).toContain("routes");
    }
  });

  it("refuses an unmatched-route setting outside the enum", async () => {
    const error = await t.admin
      .createKeySpace({ ...space("bad-enum"), unmatchedRoutes: 7 as UnmatchedRoutes })
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(error?.code).toBe(Code.InvalidArgument);
  });
});

describe("migration 003_route_policy (needs Postgres)", () => {
  let db: TestDatabase;
  let t: TestServer | undefined;
  afterAll(async () => {
    await t?.stop();
    await db?.drop();
  });

  it("keeps key spaces that existed allowing unmatched paths, while new ones refuse them", async () => {
    db = await createTestDatabase(inject("databaseUrl"));
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      // The database as the previous release left it: 001 and 002 applied, one key space with route rules.
      const dir = new URL("../../src/store/migrations/", import.meta.url);
      await sql`create table schema_migrations (name text primary key, applied_at timestamptz not null default now())`;
      for (const file of ["001_init.sql", "002_approvals.sql"]) {
        await sql.unsafe(await readFile(new URL(file, dir), "utf8"));
        await sql`insert into schema_migrations (name) values (${file})`;
      }
      const [root] = await sql<{ settings: Record<string, unknown> }[]>`select settings from key_spaces`;
      const settings = {
        ...root!.settings,
        format: { prefix: "old_", workspaceSegment: false, style: "single", secretBytes: 0, idPrefix: "" },
        scopeModel: { scopes: ["things:read"], hierarchies: [], ladders: [], fullAccessScope: "" },
        routes: [{ method: "GET", path: "/things/*", scopes: ["things:read"], cost: 0 }],
      };
      await sql`insert into key_spaces (id, name, settings) values ('ks_old', 'old', ${sql.json(settings as never)})`;

      expect(await migrate(sql)).toContain("003_route_policy.sql");
      const [old] =
        await sql`select unmatched_routes, case_insensitive_routes from key_spaces where id = 'ks_old'`;
      expect(old).toEqual({ unmatched_routes: "allow", case_insensitive_routes: false });
      await sql`insert into key_spaces (id, name, settings) values ('ks_new', 'new', ${sql.json(settings as never)})`;
      const [fresh] = await sql`select unmatched_routes from key_spaces where id = 'ks_new'`;
      expect(fresh).toEqual({ unmatched_routes: "deny" });
    } finally {
      await sql.end({ timeout: 5 });
    }

    t = await startTestServer({ databaseUrl: db.url });
    expect((await t.admin.getKeySpace({ id: "ks_old" })).keySpace?.unmatchedRoutes).toBe(
      UnmatchedRoutes.ALLOW,
    );
    const secret = await keyIn(t, "ks_old");
    const gw = gateway(t, "old");
    try {
      expect((await gw.request("GET", "/anything", { authorization: `Bearer ${secret}` })).status).toBe(200);
    } finally {
      gw.close();
    }
    const { keySpace } = await t.admin.createKeySpace(space("created-after"));
    expect(keySpace?.unmatchedRoutes).toBe(UnmatchedRoutes.DENY);
  });
});
