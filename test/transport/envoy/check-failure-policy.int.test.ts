import { status } from "@grpc/grpc-js";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../../gen/keymesh/v1/types_pb.js";
import { asHttp, createEnvoyClient } from "../../support/envoy-client.js";
import { startTestServer, type TestServer } from "../../support/server.js";

// A hung Postgres: another session holds an exclusive lock on `keys`, so every key lookup waits on it.
let t: TestServer;
let strict: TestServer;

beforeAll(async () => {
  t = await startTestServer();
  strict = await startTestServer({ databaseUrl: t.databaseUrl, env: { KEYMESH_FAILURE_MODE: "error" } });
  await t.admin.createKeySpace({
    name: "hang",
    format: { prefix: "hg_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
  });
});

afterAll(async () => {
  await strict?.stop();
  await t?.stop();
});

async function newKey(): Promise<string> {
  const space = (await t.admin.getKeySpace({ id: "hang" })).keySpace!;
  const ws = (await t.admin.createWorkspace({ name: "w", apiAccess: true })).workspace!;
  return (
    await t.admin.createKey({
      keySpaceId: space.id,
      workspaceId: ws.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "k",
    })
  ).secret;
}

async function whileDatabaseHangs<T>(fn: () => Promise<T>): Promise<T> {
  const sql = postgres(t.databaseUrl, { max: 1, onnotice: () => {} });
  let release!: () => void;
  const released = new Promise<void>((r) => (release = r));
  let locked!: () => void;
  const isLocked = new Promise<void>((r) => (locked = r));
  const holder = sql.begin(async (tx) => {
    await tx`lock table keys in access exclusive mode`;
    locked();
    await released;
  });
  await isLocked;
  try {
    return await fn();
  } finally {
    release();
    await holder;
    await sql.end();
  }
}

describe("failure policy when Postgres hangs", () => {
  it("by default a check is denied with 503 within Envoy's 200 ms, never allowed and never a gRPC error", async () => {
    const secret = await newKey();
    const envoy = createEnvoyClient(t.grpcAddress);
    try {
      const { elapsed, view } = await whileDatabaseHangs(async () => {
        const started = Date.now();
        const view = asHttp(
          await envoy.check({
            headers: { authorization: `Bearer ${secret}` },
            contextExtensions: { "keymesh.key_space": "hang" },
          }),
        );
        return { elapsed: Date.now() - started, view };
      });
      expect(view.status).toBe(503);
      expect(elapsed).toBeLessThan(400);
    } finally {
      envoy.close();
    }
  });

  it("with KEYMESH_FAILURE_MODE=error the check fails with UNAVAILABLE, for Envoy's failure_mode_allow to decide", async () => {
    const secret = await newKey();
    const envoy = createEnvoyClient(strict.grpcAddress);
    try {
      const error = await whileDatabaseHangs(() =>
        envoy
          .check({
            headers: { authorization: `Bearer ${secret}` },
            contextExtensions: { "keymesh.key_space": "hang" },
          })
          .then(
            () => undefined,
            (e: { code: number }) => e,
          ),
      );
      expect(error?.code).toBe(status.UNAVAILABLE);
    } finally {
      envoy.close();
    }
  });
});
