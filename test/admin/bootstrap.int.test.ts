import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { silentLogger } from "../../src/log.js";
import { bootstrapOnce, migrateOnly } from "../../src/server.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { TEST_PEPPER } from "../support/server.js";

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
});

afterAll(async () => {
  await db?.drop();
});

describe("the migrate and bootstrap commands", () => {
  it("migrate applies every migration once, and a second run applies nothing", async () => {
    const config = loadConfig({ DATABASE_URL: db.url, KEYMESH_PEPPER: TEST_PEPPER });
    expect(await migrateOnly(config, silentLogger)).toEqual([
      "001_init.sql",
      "002_approvals.sql",
      "003_route_policy.sql",
      "004_roles.sql",
      "005_commit_deadline.sql",
      "006_workspace_delete.sql",
    ]);
    expect(await migrateOnly(config, silentLogger)).toEqual([]);
  });

  it("bootstrap creates the first root key once and stores only its digest", async () => {
    const config = loadConfig({ DATABASE_URL: db.url, KEYMESH_PEPPER: TEST_PEPPER });
    const secret = await bootstrapOnce(config, silentLogger);
    expect(secret).toMatch(/^km_root_[0-9A-Za-z]{30,}$/);
    expect(await bootstrapOnce(config, silentLogger)).toBeUndefined();
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    try {
      const rows = await sql`select scopes, digest from keys where key_space_id = 'ks_keymesh_root'`;
      expect(rows).toHaveLength(1);
      expect(rows[0]!.scopes).toEqual(["admin:root"]);
      expect(JSON.stringify(rows)).not.toContain(secret!.slice(8));
    } finally {
      await sql.end();
    }
  });
});
