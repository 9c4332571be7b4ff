import type { Sql } from "postgres";

/** The role migration 004 grants the service's privileges to. */
export const SERVICE_ROLE = "keymesh_service";

/**
 * What the role `sql` connects as could do to the audit log beyond appending and reading it; empty when nothing.
 * A superuser or the table's owner can also disable its append-only trigger, which no privilege check catches.
 */
export async function auditLogRisks(sql: Sql): Promise<string[]> {
  const [row] = await sql<
    { superuser: boolean; owner: boolean; truncate: boolean; update: boolean; delete: boolean }[]
  >`
    select r.rolsuper as superuser,
           pg_has_role(c.relowner, 'USAGE') as owner,
           has_table_privilege(c.oid, 'TRUNCATE') as truncate,
           has_table_privilege(c.oid, 'UPDATE') as update,
           has_table_privilege(c.oid, 'DELETE') as delete
    from pg_roles r, pg_class c
    where r.rolname = current_user and c.oid = 'audit_events'::regclass`;
  if (!row) return [];
  const risks: string[] = [];
  if (row.superuser) risks.push("is a superuser");
  if (row.owner) risks.push("owns audit_events (may ALTER it and DISABLE its triggers)");
  for (const privilege of ["truncate", "update", "delete"] as const) {
    if (row[privilege]) risks.push(`may ${privilege.toUpperCase()} audit_events`);
  }
  return risks;
}

/**
 * Creates the service role as a login role with `password`, or makes an existing one (migration 004 creates it
 * without login) log in with it. Needs a role that may create roles: the embedded server's superuser.
 */
export async function ensureServiceLogin(sql: Sql, password: string): Promise<void> {
  // CREATE and ALTER ROLE take no parameters; the generated password is base64url, and checked to be.
  if (!/^[A-Za-z0-9_-]+$/.test(password)) throw new Error("the service role's password must be base64url");
  const [exists] = await sql`select 1 from pg_roles where rolname = ${SERVICE_ROLE}`;
  // Checked first rather than caught: a failed statement is logged by the server, password included.
  await sql.unsafe(
    `${exists ? "alter" : "create"} role ${SERVICE_ROLE} with login nosuperuser nocreatedb nocreaterole password '${password}'`,
  );
}
