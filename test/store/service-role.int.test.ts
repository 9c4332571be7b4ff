/**
 * The service's database role cannot rewrite or unprotect the audit log. Needs Postgres (the suite's shared one):
 * a fresh database is migrated by its owner (a superuser here), and a login role granted keymesh_service plays the
 * service, as an operator of an external Postgres would set it up.
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { loadConfig } from "../../src/config.js";
import { type Logger, silentLogger } from "../../src/log.js";
import { startServer } from "../../src/server.js";
import { migrate } from "../../src/store/migrate.js";
import { auditLogRisks } from "../../src/store/roles.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { createEnvoyClient } from "../support/envoy-client.js";
import { startTestServer, TEST_PEPPER } from "../support/server.js";

let db: TestDatabase;
let owner: postgres.Sql;
let service: postgres.Sql;
let serviceUrl: string;
const role = `km_svc_${randomBytes(4).toString("hex")}`;

const connect = (url: string) => postgres(url, { max: 2, onnotice: () => {} });

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
  owner = connect(db.url);
  await migrate(owner);
  const password = randomBytes(12).toString("hex");
  // An operator's own login role for the service, given the privileges through membership.
  await owner.unsafe(`create role ${role} login password '${password}' in role keymesh_service`);
  const url = new URL(db.url);
  url.username = role;
  url.password = password;
  serviceUrl = url.toString();
  service = connect(serviceUrl);
  await owner`insert into audit_events (actor, action, target_type, target_id, after)
              values ('seed', 'key.create', 'key', 'key_1', '{"name":"a"}'), ('seed', 'key.revoke', 'key', 'key_1', null)`;
});

afterAll(async () => {
  await service?.end({ timeout: 5 });
  await owner?.end({ timeout: 5 });
  await db?.drop();
  const admin = connect(inject("databaseUrl"));
  await admin.unsafe(`drop role if exists ${role}`).finally(() => admin.end({ timeout: 5 }));
});

// Statements that would rewrite the audit log or switch off what protects it, in the forms an attacker might try.
const table = fc.constantFrom(
  "audit_events",
  "public.audit_events",
  '"audit_events"',
  "AUDIT_EVENTS",
  'public."audit_events"',
);
const predicate = fc.constantFrom(
  "",
  " where true",
  " where id > 0",
  " where actor = 'seed'",
  " where false",
);
const assignment = fc.constantFrom(
  "actor = 'attacker'",
  "action = 'nothing'",
  "after = null",
  "before = '{}'::jsonb",
  "at = now() - interval '1 year'",
  "target_id = target_id || 'x'",
);
const triggerName = fc.constantFrom("audit_events_no_update", "audit_events_commit_deadline");
const trigger = fc.oneof(fc.constantFrom("all", "user"), triggerName);
const attack = fc.oneof(
  fc.tuple(table, assignment, predicate).map(([t, a, p]) => `update ${t} set ${a}${p}`),
  fc.tuple(table, predicate).map(([t, p]) => `delete from ${t}${p}`),
  fc
    .tuple(table, predicate)
    .map(([t, p]) => `with gone as (delete from ${t}${p} returning id) select count(*) from gone`),
  fc
    .tuple(table, fc.constantFrom("delete", "update set actor = 'attacker'"))
    .map(([t, action]) => `merge into ${t} a using (select 1) s on true when matched then ${action}`),
  fc
    .tuple(
      fc.constantFrom("truncate", "truncate table", "truncate only"),
      table,
      fc.constantFrom("", " restart identity", " cascade"),
    )
    .map(([verb, t, tail]) => `${verb} ${t}${tail}`),
  fc.tuple(table, trigger).map(([t, name]) => `alter table ${t} disable trigger ${name}`),
  // Replica triggers do not fire for a session in replica mode; ALWAYS ones fire regardless.
  fc
    .tuple(table, fc.constantFrom("replica", "always"), triggerName)
    .map(([t, mode, name]) => `alter table ${t} enable ${mode} trigger ${name}`),
  fc
    .tuple(
      table,
      fc.constantFrom(
        "rename to audit_old",
        "owner to current_user",
        "drop column after",
        "alter column actor drop not null",
        "disable row level security",
        "set unlogged",
      ),
    )
    .map(([t, change]) => `alter table ${t} ${change}`),
  fc.tuple(triggerName, table).map(([name, t]) => `drop trigger ${name} on ${t}`),
  table.map((t) => `drop table ${t} cascade`),
  table.map((t) => `create rule ignore_inserts as on insert to ${t} do instead nothing`),
  table.map(
    (t) =>
      `create trigger shadow before insert on ${t} for each row execute function audit_events_append_only()`,
  ),
  fc.constant("drop function audit_events_append_only() cascade"),
  fc.constant(
    "create or replace function audit_events_append_only() returns trigger language plpgsql as $$ begin return new; end $$",
  ),
  fc.constant("set session_replication_role = replica"),
);
// The same statement sent directly, in a transaction, or as dynamic SQL inside a DO block.
const wrapped = fc
  .tuple(attack, fc.constantFrom("plain", "transaction", "do"))
  .map(([statement, how]) => ({ statement, how }));

async function runAs(sql: postgres.Sql, statement: string, how: string): Promise<void> {
  if (how === "do") {
    await sql.unsafe(`do $do$ begin execute ${"$q$"}${statement}${"$q$"}; end $do$`);
  } else if (how === "transaction") {
    await sql.begin((tx) => tx.unsafe(statement));
  } else {
    await sql.unsafe(statement);
  }
}

class RolledBack extends Error {}

async function sqlState(run: Promise<unknown>): Promise<string> {
  try {
    await run;
    return "ok";
  } catch (error) {
    if (error instanceof RolledBack) return "ok";
    return String((error as { code?: unknown }).code);
  }
}

async function auditState(): Promise<string> {
  const [row] = await owner<{ digest: string; triggers: string }[]>`
    select (select md5(coalesce(string_agg(a::text, ',' order by id), '')) from audit_events a) as digest,
           (select string_agg(tgname || ':' || tgenabled::text, ',' order by tgname)
              from pg_trigger where tgrelid = 'audit_events'::regclass) as triggers`;
  return `${row!.digest} ${row!.triggers}`;
}

describe("the service role against the audit log (needs Postgres)", () => {
  it("every statement that would rewrite or unprotect the log fails with insufficient_privilege and changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(wrapped, async ({ statement, how }) => {
        const before = await auditState();
        expect({ statement, how, state: await sqlState(runAs(service, statement, how)) }).toEqual({
          statement,
          how,
          state: "42501",
        });
        expect(await auditState()).toBe(before);
        // The statement is a real attack: the owner may run it (only the append-only trigger stops its row
        // changes). Tried in a transaction that is then rolled back.
        const asOwner = await sqlState(
          owner.begin(async (tx) => {
            await tx.unsafe(statement);
            throw new RolledBack();
          }),
        );
        expect(["ok", "P0001"]).toContain(asOwner);
        expect(await auditState()).toBe(before);
      }),
      { numRuns: 300 },
    );
  });

  it("appends and reads any audit entry", async () => {
    const text = fc.string({ unit: "grapheme", maxLength: 40 }).filter((s) => !s.includes("\u0000"));
    const json = fc.option(
      fc.dictionary(
        fc.string({ maxLength: 8 }).filter((s) => !s.includes("\u0000")),
        fc.oneof(fc.integer(), fc.boolean(), text),
        { maxKeys: 4 },
      ),
      { nil: null },
    );
    await fc.assert(
      fc.asyncProperty(text, text, text, json, async (actor, action, targetId, after) => {
        const [inserted] = await service<{ id: string }[]>`
          insert into audit_events (actor, action, target_type, target_id, after)
          values (${actor}, ${action}, 'key', ${targetId}, ${after === null ? null : service.json(after)})
          returning id`;
        const [read] = await service<{ actor: string; action: string; target_id: string; after: unknown }[]>`
          select actor, action, target_id, after from audit_events where id = ${inserted!.id}`;
        expect(read).toEqual({ actor, action, target_id: targetId, after });
      }),
      { numRuns: 50 },
    );
  });

  it("reports no risk for the service role, and every risk for the owner", async () => {
    expect(await auditLogRisks(service)).toEqual([]);
    expect(await auditLogRisks(owner)).toEqual(
      expect.arrayContaining(["is a superuser", "may TRUNCATE audit_events"]),
    );
  });
});

describe("keymesh runs end to end as the service role (needs Postgres)", () => {
  it("issues, checks, rotates, revokes and deletes keys and workspaces, with revocations reaching another instance", async () => {
    const env = { DATABASE_MIGRATION_URL: db.url, KEYMESH_CACHE_TTL_MS: "60000" };
    const a = await startTestServer({ databaseUrl: serviceUrl, env });
    const b = await startTestServer({ databaseUrl: serviceUrl, env });
    const envoyB = createEnvoyClient(b.grpcAddress);
    try {
      const [who] = await a.server.core.admin.sql<{ user: string }[]>`select current_user as user`;
      expect(who!.user).toBe(role);
      const { keySpace: space } = await a.admin.createKeySpace({
        name: "svc",
        format: { prefix: "svc_", style: KeyStyle.SINGLE },
        credentialSources: [{ kind: CredentialSourceKind.BEARER }],
        scopeModel: { scopes: ["read"] },
      });
      const { workspace } = await a.admin.createWorkspace({ name: "svc", apiAccess: true });
      const { member } = await a.admin.addMember({ workspaceId: workspace!.id, name: "m", role: "Admin" });
      const issue = () =>
        a.admin.createKey({
          keySpaceId: space!.id,
          workspaceId: workspace!.id,
          ownerType: OwnerType.USER,
          memberId: member!.id,
          name: "k",
          scopes: ["read"],
          idempotencyKey: randomBytes(6).toString("hex"),
        });
      const statusOnB = async (secret: string) =>
        (
          await envoyB.check({
            headers: { authorization: `Bearer ${secret}` },
            contextExtensions: { "keymesh.key_space": "svc" },
          })
        ).status?.code === 0
          ? 200
          : 401;

      const first = await issue();
      expect(await statusOnB(first.secret)).toBe(200);
      // Usage is recorded by the service role too.
      await expect
        .poll(
          async () =>
            (
              await owner<
                { n: number }[]
              >`select count(*)::int as n from key_usage where key_id = ${first.key!.id}`
            )[0]!.n,
          { timeout: 3000, interval: 100 },
        )
        .toBe(1);
      await a.admin.updateKey({ id: first.key!.id, name: "renamed" });
      const rotated = await a.admin.rotateKey({ id: first.key!.id, graceSeconds: 0n });
      await expect.poll(() => statusOnB(first.secret), { timeout: 1000, interval: 20 }).toBe(401);
      expect(await statusOnB(rotated.secret)).toBe(200);
      await a.admin.revokeKey({ id: rotated.key!.id });
      await expect.poll(() => statusOnB(rotated.secret), { timeout: 1000, interval: 20 }).toBe(401);
      await a.admin.deleteKey({ id: rotated.key!.id });
      // Deleting the workspace needs DELETE on workspaces, members and approvals (migration 006).
      const live = await issue();
      const removed = await a.admin.deleteWorkspace({ id: workspace!.id, force: true });
      expect(removed).toMatchObject({ revokedKeys: 1, deletedMembers: 1 });
      await expect.poll(() => statusOnB(live.secret), { timeout: 1000, interval: 20 }).toBe(401);
      const { events } = await a.admin.listAuditEvents({ pageSize: 100 });
      expect(events.map((e) => e.action)).toEqual(
        expect.arrayContaining([
          "key.create",
          "key.update",
          "key.rotate",
          "key.revoke",
          "key.delete",
          "workspace.delete",
        ]),
      );
    } finally {
      envoyB.close();
      await b.stop();
      await a.stop();
    }
  }, 60_000);

  it("starts with the service role's credentials alone once the owner has migrated, and says so when it cannot", async () => {
    const config = (databaseUrl: string) =>
      loadConfig({
        DATABASE_URL: databaseUrl,
        KEYMESH_PEPPER: TEST_PEPPER,
        KEYMESH_HTTP_PORT: "0",
        KEYMESH_GRPC_PORT: "0",
      });
    const server = await startServer(config(serviceUrl), silentLogger);
    await server.close();
    const fresh = await createTestDatabase(inject("databaseUrl"));
    try {
      const url = new URL(serviceUrl);
      url.pathname = new URL(fresh.url).pathname;
      await expect(startServer(config(url.toString()), silentLogger)).rejects.toThrow(
        /migrations are pending.*keymesh migrate.*DATABASE_MIGRATION_URL/,
      );
    } finally {
      await fresh.drop();
    }
  }, 30_000);

  it("warns at boot when the service's role could rewrite the audit log, and not when it cannot", async () => {
    const warnings = async (databaseUrl: string) => {
      const seen: string[] = [];
      const logger: Logger = { debug() {}, info() {}, error() {}, warn: (message) => seen.push(message) };
      const server = await startServer(
        loadConfig({
          DATABASE_URL: databaseUrl,
          DATABASE_MIGRATION_URL: db.url,
          KEYMESH_PEPPER: TEST_PEPPER,
          KEYMESH_HTTP_PORT: "0",
          KEYMESH_GRPC_PORT: "0",
        }),
        logger,
      );
      await server.close();
      return seen.filter((m) => m.includes("can rewrite the audit log"));
    };
    expect(await warnings(db.url)).toHaveLength(1);
    expect(await warnings(serviceUrl)).toHaveLength(0);
  }, 30_000);
});
