import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { LADDER } from "./admin-expectations.js";
import { codeOf, ROOT_KEY_SPACE } from "./admin-fixtures.js";

let t: TestServer;
let sql: postgres.Sql;

beforeAll(async () => {
  t = await startTestServer();
  sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
});

afterAll(async () => {
  await sql?.end();
  await t?.stop();
});

// Scopes an attacker might ask for: the admin ones, near misses, wildcards and other key spaces' vocabularies.
const scopeLike = fc.constantFrom(
  ...LADDER,
  "admin:*",
  "admin",
  "Admin:root",
  "admin:roots",
  "*",
  "root",
  "CreatePod",
);
const requested = fc.uniqueArray(scopeLike, { minLength: 1, maxLength: 4 });
const nonRoot = fc.uniqueArray(fc.constantFrom("admin:read", "admin:write"), { minLength: 1 });

/** Every root key as stored: what an escalation would have to change. */
const rootKeys = () =>
  sql`select id, scopes, revoked_at, expires_at, rotated_to_id from keys where key_space_id = ${ROOT_KEY_SPACE} order by id`;

async function issue(scopes: readonly string[]) {
  const { key, secret } = await t.admin.createRootKey({ name: scopes.join("+"), scopes: [...scopes] });
  return { id: key!.id, secret };
}

describe("no root key can give itself or another key more than it holds (needs Postgres)", () => {
  it("no sequence of KeyAdmin calls by a key without admin:root changes any root key (generated)", async () => {
    // What the attacker tries, on its own key, on an operator's admin:root key, or on a peer without admin:root.
    const victim = fc.constantFrom("self", "operator", "peer");
    const step = fc.oneof(
      fc.record({ op: fc.constant("createRootKey"), scopes: requested }),
      fc.record({ op: fc.constant("updateKey"), on: victim, scopes: requested }),
      fc.record({ op: fc.constantFrom("rotateKey", "revokeKey", "activateKey", "deleteKey"), on: victim }),
      fc.record({ op: fc.constant("createKey"), scopes: requested }),
    );
    await fc.assert(
      fc.asyncProperty(nonRoot, fc.array(step, { minLength: 1, maxLength: 8 }), async (held, steps) => {
        const attacker = await issue(held);
        const ids = {
          self: attacker.id,
          operator: (await issue(["admin:root"])).id,
          peer: (await issue(held)).id,
        };
        const before = await rootKeys();
        const client = t.adminAs(attacker.secret);
        for (const s of steps) {
          const id = "on" in s ? ids[s.on] : "";
          const result =
            s.op === "createRootKey"
              ? await codeOf(client.createRootKey({ name: "mine", scopes: s.scopes }))
              : s.op === "updateKey"
                ? await codeOf(client.updateKey({ id, scopes: { values: s.scopes } }))
                : s.op === "createKey"
                  ? await codeOf(
                      client.createKey({
                        keySpaceId: ROOT_KEY_SPACE,
                        workspaceId: "ws_keymesh",
                        ownerType: OwnerType.ORGANIZATION,
                        name: "mine",
                        scopes: s.scopes,
                      }),
                    )
                  : await codeOf(client[s.op]({ id }));
          expect(result, JSON.stringify(s)).toBe(Code.PermissionDenied);
        }
        expect(await rootKeys()).toEqual(before);
      }),
      { numRuns: 30 },
    );
  });

  it("an admin:root caller grants exactly the admin scopes asked for, and no scope outside them (generated)", async () => {
    const target = await issue(["admin:read"]);
    await fc.assert(
      fc.asyncProperty(requested, async (scopes) => {
        const admin = scopes.every((s) => (LADDER as readonly string[]).includes(s));
        const created = await t.admin.createRootKey({ name: "granted", scopes }).catch(() => undefined);
        expect(created !== undefined).toBe(admin);
        if (created) expect(created.key!.scopes).toEqual(scopes);
        const updated = await codeOf(t.admin.updateKey({ id: target.id, scopes: { values: scopes } }));
        expect(updated).toBe(admin ? "ok" : Code.InvalidArgument);
        const stored = await sql<{ scopes: string[] }[]>`select scopes from keys where id = ${target.id}`;
        expect(stored[0]!.scopes.every((s) => (LADDER as readonly string[]).includes(s))).toBe(true);
      }),
      { numRuns: 40 },
    );
  });
});
