import { Redis } from "ioredis";
import postgres from "postgres";
import { describe, expect, inject, it } from "vitest";
import { createTestDatabase } from "./database.js";

describe("the test suite reaches a real Postgres and a real Redis", () => {
  it("runs select 1 on Postgres", async () => {
    const sql = postgres(inject("databaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql<{ one: number }[]>`select 1 as one`;
      expect(row?.one).toBe(1);
    } finally {
      await sql.end({ timeout: 5 });
    }
  });

  it("creates and drops a private database", async () => {
    const db = await createTestDatabase(inject("databaseUrl"));
    const sql = postgres(db.url, { max: 1, onnotice: () => {} });
    const [row] = await sql<{ name: string }[]>`select current_database() as name`;
    expect(row?.name).toMatch(/^km_test_[0-9a-f]+$/);
    // Left open on purpose: drop() must cope with connections a test forgot to end.
    await db.drop();
    await sql.end({ timeout: 1 }).catch(() => {});
    const admin = postgres(inject("databaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const rows = await admin`select 1 from pg_database where datname = ${row!.name}`;
      expect(rows).toHaveLength(0);
    } finally {
      await admin.end({ timeout: 5 });
    }
  });

  it("gets PONG from Redis", async () => {
    const redis = new Redis(inject("redisUrl"), { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await redis.connect();
      expect(await redis.ping()).toBe("PONG");
    } finally {
      redis.disconnect();
    }
  });
});
