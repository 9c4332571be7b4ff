import { readdir, readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import type { Sql } from "postgres";

const directory = fileURLToPath(new URL("./migrations/", import.meta.url));

/** Applies, in one transaction, the forward-only SQL migrations not yet applied; returns their names. */
export async function migrate(sql: Sql): Promise<string[]> {
  const files = (await readdir(directory)).filter((f) => f.endsWith(".sql")).sort();
  // With nothing to apply, take no lock and run no DDL: the service role, which may only read this table, can then
  // start on a schema its owner migrated beforehand.
  const [table] = await sql<{ exists: boolean }[]>`
    select to_regclass('schema_migrations') is not null as exists`;
  if (table?.exists) {
    const done = (await sql<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name);
    if (files.every((file) => done.includes(file))) return [];
  }
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    // One instance migrates at a time; the others wait here and then find nothing to do.
    await tx`select pg_advisory_xact_lock(7355608)`;
    await tx`create table if not exists schema_migrations (name text primary key, applied_at timestamptz not null default now())`;
    const done = new Set(
      (await tx<{ name: string }[]>`select name from schema_migrations`).map((r) => r.name),
    );
    for (const file of files) {
      if (done.has(file)) continue;
      await tx.unsafe(await readFile(directory + file, "utf8"));
      await tx`insert into schema_migrations (name) values (${file})`;
      applied.push(file);
    }
  });
  return applied;
}
