import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { classifyStoreError } from "../../src/store/errors.js";
import { freePort } from "../support/processes.js";

let sql: postgres.Sql;

beforeAll(async () => {
  // One connection, so the temporary table lives for the whole file.
  sql = postgres(inject("databaseUrl"), { max: 1, onnotice: () => {} });
  await sql`create temporary table limited (short varchar(3), n smallint, at timestamptz, doc jsonb)`;
});

afterAll(async () => {
  await sql?.end();
});

async function failure(query: Promise<unknown>): Promise<unknown> {
  try {
    await query;
  } catch (error) {
    return error;
  }
  throw new Error("the query succeeded");
}

// Values Postgres refuses, each with the statement that sends it as a parameter.
const refusedValues = fc.oneof(
  fc
    .tuple(fc.string(), fc.string())
    .map(([a, b]) => ({ value: `${a}\u0000${b}`, run: (v: string) => sql`select ${v}::text` })),
  fc
    .oneof(fc.bigInt({ min: 2n ** 31n }), fc.bigInt({ max: -(2n ** 31n) - 1n }))
    .map((n) => ({ value: String(n), run: (v: string) => sql`select ${v}::int` })),
  fc
    .string({ minLength: 1 })
    .filter((s) => !/^\s*[+-]?\d+\s*$/.test(s) && !s.includes("\u0000"))
    .map((s) => ({ value: s, run: (v: string) => sql`select ${v}::bigint` })),
  fc
    .string({ minLength: 4, maxLength: 40 })
    .filter((s) => !s.includes("\u0000") && [...s].length > 3)
    .map((s) => ({ value: s, run: (v: string) => sql`insert into limited (short) values (${v})` })),
  fc
    .integer({ min: 32768, max: 2 ** 31 - 1 })
    .map((n) => ({ value: String(n), run: (v: string) => sql`insert into limited (n) values (${v}::int)` })),
  // Dates JavaScript holds but timestamptz does not: before 4713 BC.
  fc.integer({ min: -271_000, max: -5000 }).map((year) => ({
    value: String(year),
    run: (v: string) => sql`select ${new Date(Date.UTC(Number(v), 0, 1))}::timestamptz`,
  })),
  // JSON.stringify writes a NUL as the escape \u0000, which jsonb refuses.
  fc.tuple(fc.string({ maxLength: 10 }), fc.string({ maxLength: 10 })).map(([a, b]) => ({
    value: `${a}\u0000${b}`,
    run: (v: string) => sql`select ${sql.json({ k: v })}::jsonb`,
  })),
);

describe("storage error classification (needs Postgres)", () => {
  it("every value Postgres refuses as data is bad input, and the message does not echo the value", async () => {
    await fc.assert(
      fc.asyncProperty(refusedValues, async ({ value, run }) => {
        const error = await failure(run(value));
        const classified = classifyStoreError(error);
        expect(classified?.failure, String((error as Error).message)).toBe("bad_input");
        expect(classified!.code).toMatch(/^22/);
        if (value.length > 3) expect(classified!.message).not.toContain(value);
      }),
      { seed: 22, numRuns: 120 },
    );
  });

  it("a duplicate of a unique value is a conflict naming the constraint", async () => {
    await sql`create temporary table uniq (name text constraint uniq_name unique)`;
    await sql`insert into uniq values ('a')`;
    const classified = classifyStoreError(await failure(sql`insert into uniq values ('a')`));
    expect(classified).toMatchObject({ failure: "conflict", code: "23505" });
    expect(classified!.message).toContain("uniq_name");
  });

  it("a refused connection or a terminated session is unavailable", async () => {
    const port = await freePort();
    const nowhere = postgres(`postgres://keymesh:secret-password@127.0.0.1:${port}/none`, {
      max: 1,
      connect_timeout: 2,
      onnotice: () => {},
    });
    try {
      const classified = classifyStoreError(await failure(nowhere`select 1`));
      expect(classified?.failure).toBe("unavailable");
      expect(classified!.message).not.toContain("secret-password");
    } finally {
      await nowhere.end({ timeout: 1 });
    }
    const own = postgres(inject("databaseUrl"), { max: 1, onnotice: () => {} });
    try {
      const terminated = await failure(own`select pg_terminate_backend(pg_backend_pid())`);
      expect(classifyStoreError(terminated)?.failure).toBe("unavailable");
    } finally {
      await own.end({ timeout: 1 });
    }
  });

  it("anything else, such as a bug in a query, is not classified and stays internal", async () => {
    expect(classifyStoreError(await failure(sql`select * from no_such_table`))).toBeUndefined();
    expect(classifyStoreError(await failure(sql.unsafe("selec 1")))).toBeUndefined();
    expect(classifyStoreError(new Error("boom"))).toBeUndefined();
    expect(classifyStoreError("boom")).toBeUndefined();
  });
});
