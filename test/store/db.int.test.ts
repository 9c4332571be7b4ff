/** The service's connection pool. Needs Postgres (the suite's shared server). */
import fc from "fast-check";
import type postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { createSql } from "../../src/store/db.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

let proxy: TcpProxy;
let sql: postgres.Sql;

beforeAll(async () => {
  const url = new URL(inject("databaseUrl"));
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  url.port = String(proxy.port);
  sql = createSql(url.toString(), { max: 2, statementTimeoutMs: 5000 });
});

afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await proxy?.close();
});

// Postgres refuses NUL in text; everything else must survive the trip.
const text = fc.string({ unit: "binary" }).filter((s) => !s.includes("\u0000"));

describe("the Postgres pool (needs Postgres)", () => {
  it("sends a new connection's statements and no type query of its own, which could fail unhandled", async () => {
    await sql`select 1 as one`;
    const sent = proxy.clientBytes().toString("latin1");
    expect(sent).toContain("select 1 as one");
    expect(sent).not.toContain("pg_type");
  });

  it("binds and reads text arrays exactly as Postgres spells them (generated)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(text, { nil: null }), { maxLength: 8 }), async (values) => {
        const [row] = await sql<{ a: (string | null)[]; json: unknown }[]>`
          select ${values}::text[] as a, array_to_json(${values}::text[]) as json`;
        expect(row?.a).toEqual(values);
        expect(row?.json).toEqual(values);
      }),
      { numRuns: 60 },
    );
  });

  it("binds bigint arrays, as the usage recorder sends its counts", async () => {
    const counts = [0, 1, 2 ** 53 - 1];
    const [row] = await sql<
      { total: string }[]
    >`select sum(n)::text as total from unnest(${counts}::bigint[]) as u(n)`;
    expect(row?.total).toBe(String(2 ** 53));
  });
});
