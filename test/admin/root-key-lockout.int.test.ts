import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import fc from "fast-check";
import postgres from "postgres";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "../support/server.js";
import { codeOf, ROOT_KEY_SPACE } from "./admin-fixtures.js";

let t: TestServer;
let sql: postgres.Sql;

beforeEach(async () => {
  t = await startTestServer();
  sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
});

afterEach(async () => {
  await sql?.end();
  await t?.stop();
});

/** Ids of the root keys that can still manage root keys: active and holding admin:root. */
async function activeRootKeys(): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    select id from keys where key_space_id = ${ROOT_KEY_SPACE} and 'admin:root' = any(scopes)
      and revoked_at is null and (expires_at is null or expires_at > now()) order by id`;
  return rows.map((r) => r.id);
}

async function createRoot(scopes = ["admin:root"]) {
  const { key, secret } = await t.admin.createRootKey({ name: scopes.join("+"), scopes });
  return { id: key!.id, secret, client: t.adminAs(secret) };
}

describe("the last active admin:root key cannot be removed (needs Postgres)", () => {
  it("the only admin:root key cannot revoke, delete, demote or expire itself, and keeps working", async () => {
    await createRoot(["admin:write"]); // an admin:write key does not count as a way back in
    const [self] = await activeRootKeys();
    const id = self!;
    const past = timestampFromDate(new Date(Date.now() - 60_000));
    expect(await codeOf(t.admin.revokeKey({ id }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(t.admin.deleteKey({ id }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(t.admin.updateKey({ id, scopes: { values: ["admin:write"] } }))).toBe(
      Code.FailedPrecondition,
    );
    expect(await codeOf(t.admin.updateKey({ id, expiresAt: past }))).toBe(Code.FailedPrecondition);
    expect(await activeRootKeys()).toEqual([id]);
    expect(await codeOf(t.admin.getWebhookSigningSecret({}))).toBe("ok");
  });

  it("a root key may revoke itself while another admin:root key remains; the survivor then may not", async () => {
    const [first] = await activeRootKeys();
    const second = await createRoot();
    expect(await codeOf(t.admin.revokeKey({ id: first! }))).toBe("ok");
    expect(await codeOf(t.admin.listWorkspaces({}))).toBe(Code.Unauthenticated);
    expect(await codeOf(second.client.revokeKey({ id: second.id }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(second.client.deleteKey({ id: second.id }))).toBe(Code.FailedPrecondition);
    expect(await codeOf(second.client.activateKey({ id: first! }))).toBe("ok");
    expect(await codeOf(t.admin.listWorkspaces({}))).toBe("ok");
  });

  it("rotating the only admin:root key with no grace is allowed: the successor keeps admin:root", async () => {
    const [id] = await activeRootKeys();
    const rotated = await t.admin.rotateKey({ id: id!, graceSeconds: 0n });
    expect(rotated.key!.scopes).toEqual(["admin:root"]);
    expect(await activeRootKeys()).toEqual([rotated.key!.id]);
    expect(await codeOf(t.adminAs(rotated.secret).getWebhookSigningSecret({}))).toBe("ok");
  });

  it("admin:root keys revoking, deleting and demoting each other at once always leave one (generated)", async () => {
    const [bootstrap] = await activeRootKeys();
    const secrets = new Map<string, string>([[bootstrap!, t.rootKey]]);
    const action = fc.record({
      by: fc.nat(),
      target: fc.nat(),
      op: fc.constantFrom("revoke", "delete", "demote", "expire"),
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 3 }),
        fc.array(action, { minLength: 1, maxLength: 6 }),
        async (extra, actions) => {
          // The run's keys are every active admin:root key there is: the previous run's survivors and new ones.
          const survivor = t.adminAs(secrets.get((await activeRootKeys())[0]!)!);
          for (let i = 0; i < extra; i++) {
            const { key, secret } = await survivor.createRootKey({ name: "peer", scopes: ["admin:root"] });
            secrets.set(key!.id, secret);
          }
          const keys = await activeRootKeys();
          const results = await Promise.all(
            actions.map(({ by, target, op }) => {
              const client = t.adminAs(secrets.get(keys[by % keys.length]!)!);
              const id = keys[target % keys.length]!;
              if (op === "revoke") return codeOf(client.revokeKey({ id }));
              if (op === "delete") return codeOf(client.deleteKey({ id }));
              if (op === "demote")
                return codeOf(client.updateKey({ id, scopes: { values: ["admin:read"] } }));
              return codeOf(
                client.updateKey({ id, expiresAt: timestampFromDate(new Date(Date.now() - 1000)) }),
              );
            }),
          );
          expect((await activeRootKeys()).length).toBeGreaterThanOrEqual(1);
          // A caller removed or demoted by an earlier action is no longer (an admin:root) root key; a deleted target is gone.
          const allowed: (Code | "ok")[] = [
            "ok",
            Code.FailedPrecondition,
            Code.Unauthenticated,
            Code.NotFound,
            Code.PermissionDenied,
          ];
          for (const result of results) expect(allowed).toContain(result);
        },
      ),
      { numRuns: 15 },
    );
  });
});
