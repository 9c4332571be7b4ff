import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { asHttp, createEnvoyClient } from "../support/envoy-client.js";
import { parsePrometheus } from "../support/prometheus.js";
import { type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis-server.js";
import { startTestServer, type TestServer } from "../support/server.js";

// Needs Postgres and Redis: a keymesh over its own private Redis, with leases at their default or turned off.

const CAPACITY = 100_000;
const PERIOD_SECONDS = 86_400;
const CHECKS = 2_000;

async function setUp(env: Record<string, string>) {
  const redis = await startRedisServer();
  const t = await startTestServer({
    env: {
      REDIS_URL: redis.url,
      KEYMESH_REDIS_TIMEOUT_MS: "1000",
      KEYMESH_CHECK_DEADLINE_MS: "2000",
      ...env,
    },
  });
  const { keySpace } = await t.admin.createKeySpace({
    name: "leases",
    format: { prefix: "lse_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read"] },
    defaultScopes: ["read"],
    // Large and slow enough to lease from: 1% is 1,000 tokens, refilled in 864 s.
    defaultKeyLimits: [{ name: "day", capacity: BigInt(CAPACITY), periodSeconds: BigInt(PERIOD_SECONDS) }],
  });
  const workspaceId = (await t.admin.createWorkspace({ name: "leases", apiAccess: true })).workspace!.id;
  const { secret } = await t.admin.createKey({
    keySpaceId: keySpace!.id,
    workspaceId,
    ownerType: OwnerType.ORGANIZATION,
    name: "busy",
    scopes: ["read"],
  });
  const envoy = createEnvoyClient(t.grpcAddress);
  /**
   * CHECKS Checks, 50 at a time as Envoy's connections would send them. Returns the least remaining count reported,
   * and the most it may be: every Check charged once, less what the bucket refilled meanwhile.
   */
  const hammer = async () => {
    const started = performance.now();
    const remaining: number[] = [];
    for (let sent = 0; sent < CHECKS; sent += 50) {
      const batch = await Promise.all(
        Array.from({ length: 50 }, () =>
          envoy.check({
            headers: { authorization: `Bearer ${secret}` },
            contextExtensions: { "keymesh.key_space": "leases" },
          }),
        ),
      );
      for (const res of batch) {
        const view = asHttp(res);
        expect(view.status).toBe(200);
        expect(view.responseHeaders["x-keymesh-warning"]).toBeUndefined();
        remaining.push(Number(view.responseHeaders["x-ratelimit-remaining"]));
      }
    }
    const refilled = (((performance.now() - started) / 1000) * CAPACITY) / PERIOD_SECONDS;
    return { least: Math.min(...remaining), most: CAPACITY - CHECKS + Math.ceil(refilled) };
  };
  const limiterCalls = async () => {
    const scrape = parsePrometheus(await (await fetch(`${t.httpUrl}/metrics`)).text());
    return scrape.value("keymesh_rate_limiter_duration_seconds_count", { backend: "redis" }) ?? 0;
  };
  return { redis, t, envoy, hammer, limiterCalls };
}

describe.skipIf(!redisServerAvailable())(
  "rate-limit leases on the Check path (needs Postgres and Redis)",
  () => {
    const running: { redis: RedisServerHandle; t: TestServer; envoy: { close(): void } }[] = [];
    afterAll(async () => {
      for (const { redis, t, envoy } of running) {
        envoy.close();
        await t.stop();
        await redis.stop();
      }
    });

    describe("with the default lease time", () => {
      let env: Awaited<ReturnType<typeof setUp>>;
      beforeAll(async () => {
        env = await setUp({});
        running.push(env);
      });

      it("answers a busy key's Checks with far fewer Redis calls than Checks, each charged once", async () => {
        const { least, most } = await env.hammer();
        expect(await env.limiterCalls()).toBeLessThan(CHECKS / 4);
        // One instance reports what one bucket would: every Check took one token.
        expect(least).toBeGreaterThanOrEqual(CAPACITY - CHECKS);
        expect(least).toBeLessThanOrEqual(most);
      });
    });

    describe("with KEYMESH_RATE_LIMIT_LEASE_MS=0", () => {
      let env: Awaited<ReturnType<typeof setUp>>;
      beforeAll(async () => {
        env = await setUp({ KEYMESH_RATE_LIMIT_LEASE_MS: "0" });
        running.push(env);
      });

      it("charges Redis for every Check", async () => {
        const { least, most } = await env.hammer();
        expect(await env.limiterCalls()).toBe(CHECKS);
        expect(least).toBeGreaterThanOrEqual(CAPACITY - CHECKS);
        expect(least).toBeLessThanOrEqual(most);
      });
    });
  },
);
