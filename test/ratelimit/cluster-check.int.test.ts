import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { asHttp, createEnvoyClient } from "../support/envoy-client.js";
import { redisServerAvailable, startRedisCluster } from "../support/redis-server.js";
import { startTestServer, type TestServer } from "../support/server.js";

const run = promisify(execFile);
const redisCli = async (port: number, ...args: string[]) =>
  (await run("redis-cli", ["-p", String(port), ...args], { timeout: 10_000 })).stdout.trim();

// keymesh on a 3-master Redis Cluster: a request's key bucket and workspace bucket are charged by one Lua script,
// which Redis Cluster only allows when both keys hash to one slot; the `{workspaceId}` hash tag guarantees it.
describe.skipIf(!redisServerAvailable())("Envoy Check with keymesh on a Redis Cluster", () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;
  let t: TestServer;
  let envoy: ReturnType<typeof createEnvoyClient>;
  let keySpaceId: string;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    t = await startTestServer({
      env: {
        REDIS_CLUSTER_NODES: cluster.nodes.map((n) => `${n.host}:${n.port}`).join(","),
        // Generous: the point here is slot placement, not latency (a MOVED redirect costs a round trip, and a
        // busy machine can stall a first call to a new master past 100 ms).
        KEYMESH_REDIS_TIMEOUT_MS: "1000",
        KEYMESH_CHECK_DEADLINE_MS: "2000",
      },
    });
    envoy = createEnvoyClient(t.grpcAddress);
    keySpaceId = (
      await t.admin.createKeySpace({
        name: "clustered",
        format: { prefix: "cl_", style: KeyStyle.SINGLE },
        credentialSources: [{ kind: CredentialSourceKind.BEARER }],
        scopeModel: { scopes: ["read"] },
        defaultScopes: ["read"],
        defaultKeyLimits: [{ name: "hour", capacity: 3n, periodSeconds: 3600n }],
        defaultWorkspaceLimits: [{ name: "hour", capacity: 5n, periodSeconds: 3600n }],
      })
    ).keySpace!.id;
  });

  afterAll(async () => {
    envoy?.close();
    await t?.stop();
    await cluster?.stop();
  });

  const check = async (secret: string) =>
    asHttp(
      await envoy.check({
        headers: { authorization: `Bearer ${secret}` },
        contextExtensions: { "keymesh.key_space": "clustered" },
      }),
    );

  it("allows up to the key limit, then the workspace limit, then answers 429; both buckets share one slot", async () => {
    const workspaceId = (await t.admin.createWorkspace({ name: "clustered", apiAccess: true })).workspace!.id;
    const createKey = async () =>
      t.admin.createKey({
        keySpaceId,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "k",
        scopes: ["read"],
      });
    const first = await createKey();
    const second = await createKey();

    // Key limit 3: remaining is the most constrained bucket, the key's.
    const seen: (string | undefined)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await check(first.secret);
      expect(res.status).toBe(200);
      expect(res.responseHeaders["x-keymesh-warning"]).toBeUndefined();
      seen.push(res.responseHeaders["x-ratelimit-remaining"]);
    }
    expect(seen).toEqual(["2", "1", "0"]);
    const keyLimited = await check(first.secret);
    expect(keyLimited.status).toBe(429);
    expect(Number(keyLimited.headers["retry-after"])).toBeGreaterThanOrEqual(1);

    // Workspace limit 5: the second key has its own 3, but only 2 workspace tokens are left.
    const second1 = await check(second.secret);
    const second2 = await check(second.secret);
    expect([second1.status, second2.status]).toEqual([200, 200]);
    expect([
      second1.responseHeaders["x-ratelimit-remaining"],
      second2.responseHeaders["x-ratelimit-remaining"],
    ]).toEqual(["1", "0"]);
    const workspaceLimited = await check(second.secret);
    expect(workspaceLimited.status).toBe(429);
    expect(workspaceLimited.headers["x-ratelimit-limit"]).toBe("5");

    // The buckets in the cluster: two key buckets and one workspace bucket, all tagged with the workspace id.
    const keysByNode = await Promise.all(
      cluster.nodes.map(async (n) => ({
        port: n.port,
        keys: (await redisCli(n.port, "--raw", "keys", `km:rl:{${workspaceId}}:*`))
          .split("\n")
          .filter(Boolean),
      })),
    );
    const holders = keysByNode.filter((n) => n.keys.length > 0);
    const keys = holders.flatMap((n) => n.keys);
    expect(keys.sort()).toEqual(
      [`k:${first.key!.id}:hour`, `k:${second.key!.id}:hour`, `w:${keySpaceId}:hour`]
        .map((id) => `km:rl:{${workspaceId}}:${id}`)
        .sort(),
    );
    // One node holds them all, and Redis computes the same slot for each (the one the tag alone hashes to).
    expect(holders).toHaveLength(1);
    const port = holders[0]!.port;
    const slots = await Promise.all(keys.map((k) => redisCli(port, "cluster", "keyslot", k)));
    const tagSlot = await redisCli(port, "cluster", "keyslot", workspaceId);
    expect(new Set(slots)).toEqual(new Set([tagSlot]));
  });

  it("workspaces on different masters are limited independently", async () => {
    // A handful of workspaces spreads their tags over the masters; each gets its own full workspace bucket.
    const secrets: string[] = [];
    for (let i = 0; i < 6; i++) {
      const workspaceId = (await t.admin.createWorkspace({ name: `w${i}`, apiAccess: true })).workspace!.id;
      secrets.push(
        (
          await t.admin.createKey({
            keySpaceId,
            workspaceId,
            ownerType: OwnerType.ORGANIZATION,
            name: "k",
            scopes: ["read"],
          })
        ).secret,
      );
    }
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(secrets.map(check));
      for (const res of results) {
        expect(res.status).toBe(200);
        expect(res.responseHeaders["x-ratelimit-remaining"]).toBe(String(2 - round));
      }
    }
    const denied = await Promise.all(secrets.map(check));
    expect(denied.map((r) => r.status)).toEqual(secrets.map(() => 429));
  });
});
