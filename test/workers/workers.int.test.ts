/**
 * `KEYMESH_WORKERS=2`: a keymesh process (as `npm run dev` starts it, through tsx) whose primary forks two workers
 * over the suite's Postgres and Redis. Which worker holds a connection is observed from outside through /proc
 * (worker-sockets.ts). Needs Postgres and Redis.
 */
import { spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { CheckRequestSchema, CheckResponseSchema } from "../../gen/envoy/service/auth/v3/external_auth_pb.js";
import { KeyAdmin } from "../../gen/keymesh/v1/admin_pb.js";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { createTestDatabase, type TestDatabase } from "../support/database.js";
import { type KeymeshProcess, startKeymeshProcess } from "../support/keymesh-process.js";
import { TEST_PEPPER } from "../support/server.js";
import { connectH2, connectionOwner, type H2Connection } from "./worker-sockets.js";

const DRAIN_MS = 2_000;
const WORKERS = 2;

let db: TestDatabase;
let km: KeymeshProcess;

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
  km = await startKeymeshProcess({
    command: process.execPath,
    args: ["--import", "tsx", "src/main.ts", "serve"],
    databaseUrl: db.url,
    env: {
      REDIS_URL: inject("redisUrl"),
      KEYMESH_WORKERS: String(WORKERS),
      KEYMESH_DRAIN_MS: String(DRAIN_MS),
      // A loaded 2-core machine can take a second over a Check; deadlines are not what this file tests.
      KEYMESH_REDIS_TIMEOUT_MS: "1000",
      KEYMESH_CHECK_DEADLINE_MS: "3000",
    },
  });
  // The primary reports serving once it listens; on a loaded machine a worker may still be starting.
  for (let waited = 0; workerPids().length < WORKERS && waited < 60_000; waited += 100) await sleep(100);
}, 120_000);

afterAll(async () => {
  km?.kill();
  for (const pid of workerPids()) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  await db?.drop();
});

/** The pids of the workers serving now, from the primary's and the workers' log lines. */
function workerPids(): number[] {
  if (!km) return [];
  const logs = km.logs() as { message: string; pid?: number }[];
  const exited = new Set(logs.filter((l) => /^worker exited/.test(l.message)).map((l) => l.pid));
  const serving = logs.filter((l) => l.message === "worker serving").map((l) => l.pid!);
  return [...new Set(serving)].filter((pid) => !exited.has(pid));
}

const grpcHeaders = { "content-type": "application/grpc", te: "trailers" };
const frame = (message: Uint8Array) => {
  const out = Buffer.alloc(5 + message.length);
  out.writeUInt32BE(message.length, 1);
  out.set(message, 5);
  return out;
};

/** grpc.health.v1.Health/Check for the server ("") over `conn`: true when SERVING. */
async function grpcServing(conn: H2Connection): Promise<boolean> {
  const answer = await conn.request("/grpc.health.v1.Health/Check", grpcHeaders, frame(new Uint8Array()));
  // HealthCheckResponse{status: SERVING} is field 1, varint 1.
  return answer.trailers["grpc-status"] === "0" && answer.body.subarray(5).equals(Buffer.from([8, 1]));
}

/** An Envoy Check with `key` over `conn`: the CheckResponse's status code (0 allows). */
async function checkCode(conn: H2Connection, key: string): Promise<number> {
  const request = create(CheckRequestSchema, {
    attributes: {
      request: {
        http: {
          method: "GET",
          path: "/",
          host: "api.example.com",
          headers: { authorization: `Bearer ${key}` },
        },
      },
      contextExtensions: { "keymesh.key_space": "workers" },
    },
  });
  const answer = await conn.request(
    "/envoy.service.auth.v3.Authorization/Check",
    grpcHeaders,
    frame(toBinary(CheckRequestSchema, request)),
  );
  expect(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]).toBe("0");
  return fromBinary(CheckResponseSchema, answer.body.subarray(5)).status?.code ?? 0;
}

/**
 * Opens connections to `port` until every worker in `pids` holds one (round-robin hands consecutive connections to
 * different workers); `probe` must succeed on each before its owner is read. Returns one connection per worker.
 */
async function connectionPerWorker(
  port: number,
  pids: number[],
  probe: (conn: H2Connection) => Promise<void>,
): Promise<Map<number, H2Connection>> {
  const byPid = new Map<number, H2Connection>();
  for (let attempt = 0; attempt < 20 && byPid.size < pids.length; attempt++) {
    const conn = await connectH2(port);
    await probe(conn);
    const owner = connectionOwner(port, conn.localPort, pids);
    if (owner !== undefined && !byPid.has(owner)) byPid.set(owner, conn);
    else conn.close();
  }
  return byPid;
}

const closeAll = (conns: Map<number, H2Connection>) => {
  for (const conn of conns.values()) conn.close();
};

function adminClient() {
  const transport = createConnectTransport({
    baseUrl: `http://127.0.0.1:${km.httpPort}`,
    httpVersion: "1.1",
    interceptors: [
      (next) => (req) => {
        req.header.set("authorization", `Bearer ${km.rootKey}`);
        return next(req);
      },
    ],
  });
  return createClient(KeyAdmin, transport);
}

describe("KEYMESH_WORKERS=2 (Postgres, Redis, a keymesh process)", () => {
  it("serves both ports from both worker processes", async () => {
    const pids = workerPids();
    expect(pids, km.output()).toHaveLength(WORKERS);
    expect(pids).not.toContain(km.child.pid);
    const grpc = await connectionPerWorker(km.grpcPort, pids, async (conn) => {
      expect(await grpcServing(conn)).toBe(true);
    });
    const http = await connectionPerWorker(km.httpPort, pids, async (conn) => {
      const answer = await conn.request("/readyz");
      expect(answer.status).toBe(200);
    });
    try {
      expect([...grpc.keys()].sort()).toEqual([...pids].sort());
      expect([...http.keys()].sort()).toEqual([...pids].sort());
    } finally {
      closeAll(grpc);
      closeAll(http);
    }
  });

  it("denies a key revoked through KeyAdmin on every worker within 1 s", async () => {
    const admin = adminClient();
    const { keySpace } = await admin.createKeySpace({
      name: "workers",
      format: { prefix: "wrk_", workspaceSegment: false, style: KeyStyle.SINGLE },
      credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    });
    const { workspace } = await admin.createWorkspace({ name: "Workers", apiAccess: true });
    const issued = await admin.createKey({
      keySpaceId: keySpace!.id,
      workspaceId: workspace!.id,
      ownerType: OwnerType.ORGANIZATION,
      name: "revoked across workers",
    });
    const pids = workerPids();
    const conns = await connectionPerWorker(km.grpcPort, pids, async (conn) => {
      // Allowed, and now cached in this worker for the cache TTL (30 s): only an invalidation can deny it sooner.
      expect(await checkCode(conn, issued.secret)).toBe(0);
    });
    try {
      expect(conns.size).toBe(WORKERS);
      // Every worker allows it from a warm cache.
      for (const conn of conns.values()) expect(await checkCode(conn, issued.secret)).toBe(0);
      await admin.revokeKey({ id: issued.key!.id });
      const revokedAt = performance.now();
      const deniedAfter = await Promise.all(
        [...conns.values()].map(async (conn) => {
          while (performance.now() - revokedAt < 5_000) {
            if ((await checkCode(conn, issued.secret)) !== 0) return performance.now() - revokedAt;
            await new Promise((resolve) => setTimeout(resolve, 10));
          }
          return Number.POSITIVE_INFINITY;
        }),
      );
      for (const ms of deniedAfter) expect(ms).toBeLessThanOrEqual(1_000);
    } finally {
      closeAll(conns);
    }
  });

  it("replaces a worker killed with SIGKILL, and the replacement serves", async () => {
    const [victim, survivor] = workerPids();
    process.kill(victim!, "SIGKILL");
    await expect
      .poll(() => workerPids().filter((pid) => pid !== survivor && pid !== victim), {
        timeout: 30_000,
        interval: 100,
      })
      .toHaveLength(1);
    expect(workerPids()).not.toContain(victim);
    const replacement = workerPids().find((pid) => pid !== survivor)!;
    expect(km.logs().some((l) => l.message === "worker exited unexpectedly" && l.pid === victim)).toBe(true);
    const conns = await connectionPerWorker(km.grpcPort, [survivor!, replacement], async (conn) => {
      expect(await grpcServing(conn)).toBe(true);
    });
    try {
      expect([...conns.keys()]).toContain(replacement);
    } finally {
      closeAll(conns);
    }
  });

  it("drains every worker on SIGTERM and exits 0 once all have", async () => {
    const pids = workerPids();
    const started = performance.now();
    km.child.kill("SIGTERM");
    // During the drain every worker still answers, and answers not ready.
    await expect
      .poll(
        async () => {
          const conn = await connectH2(km.httpPort);
          try {
            return (await conn.request("/readyz")).status;
          } finally {
            conn.close();
          }
        },
        { timeout: DRAIN_MS, interval: 50 },
      )
      .toBe(503);
    const exit = await km.exited;
    expect(exit, km.output()).toEqual({ code: 0, signal: null });
    expect(performance.now() - started).toBeGreaterThanOrEqual(DRAIN_MS);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    const drained = km.logs().filter((l) => /^drain period over/.test(l.message)) as { pid?: number }[];
    expect(drained.map((l) => l.pid).sort()).toEqual([...pids].sort());
  });
});

describe("KEYMESH_WORKERS without Redis (no database needed)", () => {
  it("refuses more than one worker with a configuration error naming the setting", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/main.ts", "serve"], {
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        DATABASE_URL: "postgres://nobody@127.0.0.1:1/none",
        KEYMESH_PEPPER: TEST_PEPPER,
        KEYMESH_WORKERS: "2",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.once("close", resolve));
    expect(code).toBe(1);
    expect(stderr).toMatch(/invalid configuration: KEYMESH_WORKERS is 2, but without REDIS_URL/);
  });
});
