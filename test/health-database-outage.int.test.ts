/**
 * Liveness and readiness through a database outage: two keymesh instances reach Postgres through a TCP proxy the
 * test cuts. Needs Postgres.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../gen/keymesh/v1/types_pb.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { createEnvoyClient } from "./support/envoy-client.js";
import { startTestServer, type TestServer } from "./support/server.js";
import { startTcpProxy, type TcpProxy } from "./support/tcp-proxy.js";
import { healthClient } from "./transport/connect/grpc-clients.js";

let db: TestDatabase;
let proxy: TcpProxy;
let cold: TestServer;
let warm: TestServer;
let envoy: ReturnType<typeof createEnvoyClient>;
let secret: string;
const clients: { close(): void }[] = [];

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
  const url = new URL(db.url);
  proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  url.host = `127.0.0.1:${proxy.port}`;
  // One instance never counts its cache as warm; the other does from its first cached key (the default).
  cold = await startTestServer({ databaseUrl: url.toString(), env: { KEYMESH_READY_MIN_CACHED_KEYS: "0" } });
  warm = await startTestServer({ databaseUrl: url.toString() });
  const keySpaceId = (
    await warm.admin.createKeySpace({
      name: "outage",
      format: { prefix: "og_", style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    })
  ).keySpace!.id;
  const workspaceId = (await warm.admin.createWorkspace({ name: "w", apiAccess: true })).workspace!.id;
  secret = (
    await warm.admin.createKey({ keySpaceId, workspaceId, ownerType: OwnerType.ORGANIZATION, name: "k" })
  ).secret;
  envoy = createEnvoyClient(warm.grpcAddress);
});

afterAll(async () => {
  proxy?.restore();
  envoy?.close();
  for (const client of clients) client.close();
  await cold?.stop();
  await warm?.stop();
  await proxy?.close();
  await db?.drop();
});

const get = async (server: TestServer, path: string) => {
  const res = await fetch(`${server.httpUrl}${path}`);
  return { status: res.status, body: await res.text() };
};
const check = async () =>
  (
    await envoy.check({
      headers: { authorization: `Bearer ${secret}` },
      contextExtensions: { "keymesh.key_space": "outage" },
    })
  ).status?.code;
const grpcHealth = (address: string) => {
  const client = healthClient(address);
  clients.push(client);
  return client;
};

describe("a database outage (Postgres through a proxy)", () => {
  it("keeps /livez at 200, turns a cold instance unready, and keeps a warm one ready for checks only", async () => {
    expect(await check()).toBe(0); // the key is now in the warm instance's cache
    expect((await get(cold, "/readyz")).status).toBe(200);

    proxy.cut();
    await expect.poll(async () => (await get(cold, "/readyz")).status, { timeout: 10_000 }).toBe(503);
    expect((await get(cold, "/readyz")).body).toMatch(/database is unreachable and the key cache is cold/);
    expect((await get(cold, "/healthz")).status).toBe(503);
    expect(await get(cold, "/livez")).toEqual({ status: 200, body: "ok\n" });
    expect((await grpcHealth(cold.grpcAddress).check("")).status).toBe("NOT_SERVING");

    const warmHttp = grpcHealth(`127.0.0.1:${warm.server.httpPort}`);
    await expect
      .poll(async () => (await warmHttp.check("keymesh.v1.KeyAdmin")).status, { timeout: 10_000 })
      .toBe("NOT_SERVING");
    expect(await get(warm, "/readyz")).toMatchObject({
      status: 200,
      body: expect.stringMatching(/warm key cache/),
    });
    expect(await get(warm, "/livez")).toEqual({ status: 200, body: "ok\n" });
    expect((await grpcHealth(warm.grpcAddress).check("envoy.service.auth.v3.Authorization")).status).toBe(
      "SERVING",
    );
    // And it is right to be: the cached key is still allowed.
    expect(await check()).toBe(0);

    proxy.restore();
    await expect.poll(async () => (await get(cold, "/readyz")).status, { timeout: 20_000 }).toBe(200);
    await expect
      .poll(async () => (await warmHttp.check("keymesh.v1.KeyAdmin")).status, { timeout: 20_000 })
      .toBe("SERVING");
  }, 60_000);
});
