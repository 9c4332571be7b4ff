import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { asHttp, createEnvoyClient, type HttpView } from "../support/envoy-client.js";
import { type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis-server.js";
import { startTestServer } from "../support/server.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The warning keymesh adds (x-keymesh-warning, see src/transport/decision.ts) when a request was not counted. */
const NOT_COUNTED = /rate limiting unavailable; request not counted/;

/** A keymesh over its own private Redis, with one key space whose keys get 10 requests per hour. */
async function setUp(env: Record<string, string> = {}) {
  const redis = await startRedisServer();
  const t = await startTestServer({ env: { REDIS_URL: redis.url, KEYMESH_REDIS_TIMEOUT_MS: "50", ...env } });
  const { keySpace } = await t.admin.createKeySpace({
    name: "faults",
    format: { prefix: "flt_", style: KeyStyle.SINGLE },
    credentialSources: [{ kind: CredentialSourceKind.BEARER }],
    scopeModel: { scopes: ["read"] },
    defaultScopes: ["read"],
    // An hour-long period: refill during a test (1 token per 6 minutes) never changes the counts asserted.
    defaultKeyLimits: [{ name: "hour", capacity: 10n, periodSeconds: 3600n }],
  });
  const keySpaceId = keySpace!.id;
  const workspaceId = (await t.admin.createWorkspace({ name: "faults", apiAccess: true })).workspace!.id;
  const envoy = createEnvoyClient(t.grpcAddress);
  const newKey = async () =>
    (
      await t.admin.createKey({
        keySpaceId,
        workspaceId,
        ownerType: OwnerType.ORGANIZATION,
        name: "k",
        scopes: ["read"],
      })
    ).secret;
  const check = async (secret: string): Promise<HttpView & { ms: number; grpcCode: number | undefined }> => {
    const started = performance.now();
    const res = await envoy.check({
      headers: { authorization: `Bearer ${secret}` },
      contextExtensions: { "keymesh.key_space": "faults" },
    });
    return { ...asHttp(res), ms: performance.now() - started, grpcCode: res.status?.code };
  };
  /** The remaining count of the key's bucket as KeyVerify reports it (this call is charged too). */
  const remaining = async (secret: string) => {
    const res = await t.verify.verify({ key: secret, keySpaceId });
    expect(res.valid).toBe(true);
    expect(res.limits).toHaveLength(1);
    return Number(res.limits[0]!.remaining);
  };
  return { redis, t, envoy, newKey, check, remaining };
}

/** Waits (bounded) until the Redis answers PING again, e.g. after SIGCONT or a restart. */
async function waitForPing(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
  client.on("error", () => {});
  try {
    await client.connect();
    for (let i = 0; i < 100; i++) {
      if ((await client.ping().catch(() => "")) === "PONG") return;
      await sleep(20);
    }
    throw new Error(`redis at ${url} never answered PING`);
  } finally {
    client.disconnect();
  }
}

/** Polls (bounded) until a Check on this key is counted again by the limiter (no warning, rate-limit headers). */
async function untilCounted(check: (secret: string) => Promise<HttpView>, secret: string): Promise<HttpView> {
  for (let i = 0; i < 100; i++) {
    const res = await check(secret);
    if (res.status === 200 && res.responseHeaders["x-ratelimit-remaining"] !== undefined) return res;
    await sleep(50);
  }
  throw new Error("keymesh never counted a request again after Redis came back");
}

describe.skipIf(!redisServerAvailable())(
  "Envoy Check when Redis fails, with a fail-open keymesh (the default)",
  () => {
    let env: Awaited<ReturnType<typeof setUp>>;
    let restarted: RedisServerHandle | undefined;

    beforeAll(async () => {
      env = await setUp();
    });
    afterAll(async () => {
      env?.envoy.close();
      await env?.t.stop();
      env?.redis.resume();
      await env?.redis.stop();
      await restarted?.stop();
    });

    it("Redis hanging (SIGSTOP): Check still answers within Envoy's deadline, allowed with a warning, never 429", async () => {
      const { redis, check, newKey, remaining } = env;
      const secret = await newKey();
      const first = await check(secret);
      expect(first.status).toBe(200);
      expect(first.responseHeaders["x-ratelimit-remaining"]).toBe("9");

      redis.pause();
      let during: Awaited<ReturnType<typeof check>>[];
      try {
        // More than the bucket holds, so that charging them later would show.
        during = [];
        for (let i = 0; i < 12; i++) during.push(await check(secret));
        // Let every one of those requests' deadlines lapse long before Redis reads them.
        await sleep(400);
      } finally {
        redis.resume();
      }
      for (const res of during) {
        expect(res.status).toBe(200);
        expect(res.grpcCode).toBe(0);
        expect(res.responseHeaders["x-keymesh-warning"]).toMatch(NOT_COUNTED);
        expect(res.responseHeaders["x-ratelimit-remaining"]).toBeUndefined();
        // Envoy's timeout is 200 ms and keymesh gives up on Redis after 50 ms; generous for a busy 2-core box.
        expect(res.ms).toBeLessThan(400);
      }
      await waitForPing(redis.url);
      // 10 - 1 before the hang - 1 now: none of the 12 requests made during the hang was charged when Redis woke.
      expect(await remaining(secret)).toBe(8);
    });

    it("SCRIPT FLUSH: the next Check reloads the script, is allowed and is counted", async () => {
      const { redis, check, newKey } = env;
      const secret = await newKey();
      expect((await check(secret)).responseHeaders["x-ratelimit-remaining"]).toBe("9");
      const admin = new Redis(redis.url);
      try {
        expect(await admin.script("FLUSH")).toBe("OK");
        const after = await check(secret);
        expect(after.status).toBe(200);
        expect(after.responseHeaders["x-keymesh-warning"]).toBeUndefined();
        expect(after.responseHeaders["x-ratelimit-remaining"]).toBe("8");
        // And the reloaded script keeps counting from the same bucket.
        expect((await check(secret)).responseHeaders["x-ratelimit-remaining"]).toBe("7");
      } finally {
        admin.disconnect();
      }
    });

    it("Redis stopped: a limited key is allowed with an x-keymesh-warning header, never 429; counting resumes after a restart", async () => {
      const { redis, check, newKey } = env;
      const secret = await newKey();
      expect((await check(secret)).responseHeaders["x-ratelimit-remaining"]).toBe("9");
      await redis.stop();
      // Twice the capacity: a limiter that still counted somehow would have to deny some of these.
      const results: Awaited<ReturnType<typeof check>>[] = [];
      for (let i = 0; i < 20; i++) results.push(await check(secret));
      for (const res of results) {
        expect(res.status).toBe(200);
        expect(res.responseHeaders["x-keymesh-warning"]).toMatch(NOT_COUNTED);
        expect(res.ms).toBeLessThan(400);
      }
      // A fresh server on the same address: an empty bucket store, so the key starts full again.
      restarted = await startRedisServer({ port: redis.port });
      const counted = await untilCounted(check, secret);
      expect(counted.responseHeaders["x-keymesh-warning"]).toBeUndefined();
      expect(counted.responseHeaders["x-ratelimit-remaining"]).toBe("9");
    });
  },
);

describe.skipIf(!redisServerAvailable())(
  "Envoy Check when Redis fails, with KEYMESH_RATE_LIMIT_FAILURE=closed",
  () => {
    let env: Awaited<ReturnType<typeof setUp>>;

    beforeAll(async () => {
      env = await setUp({ KEYMESH_RATE_LIMIT_FAILURE: "closed" });
    });
    afterAll(async () => {
      env?.envoy.close();
      await env?.t.stop();
      env?.redis.resume();
      await env?.redis.stop();
    });

    const expectUnavailable = (res: HttpView & { ms: number; grpcCode: number | undefined }) => {
      expect(res.status).toBe(503);
      expect(res.grpcCode).toBe(14);
      expect(JSON.parse(res.body)).toMatchObject({ error: { code: "unavailable" } });
      expect(res.headers["retry-after"]).toBeUndefined();
      expect(res.ms).toBeLessThan(400);
    };

    it("Redis hanging: Check answers 503 within Envoy's deadline, never 429, and nothing is charged later", async () => {
      const { redis, check, newKey, remaining } = env;
      const secret = await newKey();
      expect((await check(secret)).status).toBe(200);
      redis.pause();
      const during: Awaited<ReturnType<typeof check>>[] = [];
      try {
        for (let i = 0; i < 12; i++) during.push(await check(secret));
        await sleep(400);
      } finally {
        redis.resume();
      }
      for (const res of during) expectUnavailable(res);
      await waitForPing(redis.url);
      expect(await remaining(secret)).toBe(8);
    });

    it("Redis stopped: Check answers 503, never 429 and never an allow", async () => {
      const { redis, check, newKey } = env;
      const secret = await newKey();
      expect((await check(secret)).status).toBe(200);
      await redis.stop();
      for (let i = 0; i < 15; i++) expectUnavailable(await check(secret));
    });
  },
);
