import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CredentialSourceKind,
  KeyStyle,
  OwnerType,
  WorkspaceStatus,
} from "../../../gen/keymesh/v1/types_pb.js";
import { createEnvoyClient } from "../../support/envoy-client.js";
import { startTestServer, type TestServer } from "../../support/server.js";

// Two instances share one Postgres; A takes the admin calls, B answers checks from its warm cache.
let a: TestServer;
let b: TestServer;
let envoyB: ReturnType<typeof createEnvoyClient>;
let keySpaceId: string;
let workspaceId: string;

const WITHIN_ONE_SECOND = { timeout: 1000, interval: 20 };

beforeAll(async () => {
  a = await startTestServer();
  b = await startTestServer({ databaseUrl: a.databaseUrl, env: { KEYMESH_CACHE_TTL_MS: "60000" } });
  envoyB = createEnvoyClient(b.grpcAddress);
  const { keySpace } = await a.admin.createKeySpace({
    name: "shared",
    format: { prefix: "tm_live_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read", "write"] },
    defaultScopes: ["read"],
  });
  keySpaceId = keySpace!.id;
  workspaceId = (await a.admin.createWorkspace({ name: "shared", apiAccess: true })).workspace!.id;
});

afterAll(async () => {
  envoyB?.close();
  await b?.stop();
  await a?.stop();
});

async function warmKey() {
  const issued = await a.admin.createKey({
    keySpaceId,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    name: "k",
    scopes: ["read"],
  });
  const status = await statusOnB(issued.secret);
  expect(status).toBe(200);
  return issued;
}

async function statusOnB(secret: string): Promise<number> {
  const res = await envoyB.check({
    headers: { authorization: `Bearer ${secret}` },
    contextExtensions: { "keymesh.key_space": "shared" },
  });
  if (res.status?.code === 0) return 200;
  return { Unauthorized: 401, Forbidden: 403 }[res.denied_response?.status?.code as "Unauthorized"] ?? 0;
}

describe("revocation across instances", () => {
  it("a revoke on one instance is enforced by the other within 1 s", async () => {
    const { key, secret } = await warmKey();
    await a.admin.revokeKey({ id: key!.id });
    await expect.poll(() => statusOnB(secret), WITHIN_ONE_SECOND).toBe(401);
  });

  it("a rotation with zero grace kills the old key everywhere within 1 s", async () => {
    const { key, secret } = await warmKey();
    const rotated = await a.admin.rotateKey({ id: key!.id, graceSeconds: 0n });
    await expect.poll(() => statusOnB(secret), WITHIN_ONE_SECOND).toBe(401);
    expect(await statusOnB(rotated.secret)).toBe(200);
  });

  it("a scope change is enforced everywhere within 1 s", async () => {
    const { key, secret } = await warmKey();
    await a.admin.updateKey({ id: key!.id, scopes: { values: ["write"] } });
    await expect.poll(() => statusOnB(secret), WITHIN_ONE_SECOND).toBe(403);
  });

  it("disabling a workspace is enforced everywhere within 1 s", async () => {
    const { secret } = await warmKey();
    await a.admin.updateWorkspace({ id: workspaceId, status: WorkspaceStatus.DISABLED });
    await expect.poll(() => statusOnB(secret), WITHIN_ONE_SECOND).toBe(403);
    await a.admin.updateWorkspace({ id: workspaceId, status: WorkspaceStatus.ACTIVE });
    await expect.poll(() => statusOnB(secret), WITHIN_ONE_SECOND).toBe(200);
  });

  it("after the listener connection is killed, the reconnect flushes the cache and revocations still land", async () => {
    const { key, secret } = await warmKey();
    const sql = postgres(a.databaseUrl, { max: 1, onnotice: () => {} });
    try {
      await sql`select pg_terminate_backend(pid) from pg_stat_activity
                where datname = current_database() and query ilike 'listen%' and pid <> pg_backend_pid()`;
    } finally {
      await sql.end();
    }
    await a.admin.revokeKey({ id: key!.id });
    await expect.poll(() => statusOnB(secret), { timeout: 5000, interval: 50 }).toBe(401);
  });
});

describe("staleness without notifications", () => {
  it("with notifications lost, the cache TTL still bounds how long a revoked key works", async () => {
    const c = await startTestServer({ databaseUrl: a.databaseUrl, env: { KEYMESH_CACHE_TTL_MS: "1500" } });
    const envoyC = createEnvoyClient(c.grpcAddress);
    const statusOnC = async (secret: string) =>
      (
        await envoyC.check({
          headers: { authorization: `Bearer ${secret}` },
          contextExtensions: { "keymesh.key_space": "shared" },
        })
      ).status?.code === 0
        ? 200
        : 401;
    try {
      const { key, secret } = await warmKey();
      expect(await statusOnC(secret)).toBe(200);
      await c.server.core.stopListening();
      const revokedAt = Date.now();
      await a.admin.revokeKey({ id: key!.id });
      await expect.poll(() => statusOnC(secret), { timeout: 5000, interval: 50 }).toBe(401);
      // The revocation became visible only through expiry, which is bounded by the 1.5 s TTL.
      expect(Date.now() - revokedAt).toBeLessThan(1500 + 1000);
    } finally {
      envoyC.close();
      await c.stop();
    }
  });
});
