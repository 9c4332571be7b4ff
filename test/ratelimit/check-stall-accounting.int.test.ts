/**
 * Through a real keymesh's Envoy Check path: a Check answered as not counted (fail-open with a warning header, or 503
 * under KEYMESH_RATE_LIMIT_FAILURE=closed) is never counted, whenever Redis stalls and resumes around the limiter's
 * deadline. Needs Postgres (the suite's) and `redis-server` (each describe stops its own).
 */
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialSourceKind, KeyStyle, OwnerType } from "../../gen/keymesh/v1/types_pb.js";
import { asHttp, createEnvoyClient } from "../support/envoy-client.js";
import { type RedisServerHandle, redisServerAvailable, startRedisServer } from "../support/redis-server.js";
import { startTestServer, type TestServer } from "../support/server.js";
import { consumedFrom, drainConnection, stallAround, stallExamples, stallTimings } from "./stall-timing.js";

/** keymesh's Redis timeout here: short, so that a stall around it keeps each run brief. */
const REDIS_TIMEOUT_MS = 60;
const IN_FLIGHT = 12;
/** More than a run's Checks, so none is denied; a year-long period makes refill negligible. */
const CAPACITY = 64;
/**
 * Roughly how long a Check takes to reach the limiter after the client sends it (gRPC, decoding, a cached key):
 * the stall timings are centred on the limiter's deadline rather than the client's.
 */
const CHECK_LAG_MS = 8;

type Outcome = "counted" | "not counted";

for (const policy of ["open", "closed"] as const) {
  describe.skipIf(!redisServerAvailable())(
    `Envoy Check when Redis stalls around the deadline, failing ${policy} (needs Postgres and Redis)`,
    () => {
      let redis: RedisServerHandle;
      let t: TestServer;
      let envoy: ReturnType<typeof createEnvoyClient>;
      let admin: Redis;
      let keySpaceId: string;
      let workspaceId: string;

      beforeAll(async () => {
        redis = await startRedisServer();
        t = await startTestServer({
          env: {
            REDIS_URL: redis.url,
            KEYMESH_REDIS_TIMEOUT_MS: String(REDIS_TIMEOUT_MS),
            // Far beyond the Redis timeout: every answer here is the limiter's, never "no decision in time".
            KEYMESH_CHECK_DEADLINE_MS: "2000",
            KEYMESH_RATE_LIMIT_FAILURE: policy,
          },
        });
        keySpaceId = (
          await t.admin.createKeySpace({
            name: "stall",
            format: { prefix: "stl_", style: KeyStyle.SINGLE },
            credentialSources: [{ kind: CredentialSourceKind.BEARER }],
            scopeModel: { scopes: ["read"] },
            defaultScopes: ["read"],
            defaultKeyLimits: [{ name: "year", capacity: BigInt(CAPACITY), periodSeconds: 31_536_000n }],
          })
        ).keySpace!.id;
        workspaceId = (await t.admin.createWorkspace({ name: "stall", apiAccess: true })).workspace!.id;
        envoy = createEnvoyClient(t.grpcAddress);
        admin = new Redis(redis.url);
      });
      afterAll(async () => {
        admin?.disconnect();
        envoy?.close();
        await t?.stop();
        await redis?.stop();
      });

      const newKey = async () => {
        const created = await t.admin.createKey({
          keySpaceId,
          workspaceId,
          ownerType: OwnerType.ORGANIZATION,
          name: "k",
          scopes: ["read"],
        });
        return { secret: created.secret, bucketKey: `km:rl:{${workspaceId}}:k:${created.key!.id}:year` };
      };

      /** One Check, classified as its caller sees it; any other answer fails the test. */
      const check = async (secret: string): Promise<Outcome> => {
        const res = asHttp(
          await envoy.check({
            headers: { authorization: `Bearer ${secret}` },
            contextExtensions: { "keymesh.key_space": "stall" },
          }),
        );
        const warning = res.responseHeaders["x-keymesh-warning"];
        if (res.status === 200 && warning === undefined && res.responseHeaders["x-ratelimit-remaining"]) {
          return "counted";
        }
        if (policy === "open" && res.status === 200 && /request not counted/.test(warning ?? "")) {
          expect(res.responseHeaders["x-ratelimit-remaining"]).toBeUndefined();
          return "not counted";
        }
        if (policy === "closed" && res.status === 503) {
          expect(JSON.parse(res.body)).toMatchObject({ error: { code: "unavailable" } });
          return "not counted";
        }
        throw new Error(
          `unexpected answer: ${res.status} ${JSON.stringify(res.responseHeaders)} ${res.body}`,
        );
      };

      it("charges exactly the Checks it answered as counted, whenever Redis is stopped and resumed", async () => {
        const barrier = await newKey();
        // The key is cached and the limiter knows the script and Redis's clock, as on a running service.
        await drainConnection(async () => (await check(barrier.secret)) === "counted");
        let notCounted = 0;
        await fc.assert(
          fc.asyncProperty(stallTimings(CHECK_LAG_MS), async (timing) => {
            const { secret, bucketKey } = await newKey();
            // Looked up and cached before the stall; counted or not like any other Check.
            const outcomes = [await check(secret)];
            const perWave = Math.ceil(IN_FLIGHT / timing.waves);
            outcomes.push(
              ...(await stallAround(redis, REDIS_TIMEOUT_MS, timing, () =>
                Array.from({ length: perWave }, () => check(secret)),
              )),
            );
            await drainConnection(async () => (await check(barrier.secret)) === "counted");
            const counted = outcomes.filter((o) => o === "counted").length;
            notCounted += outcomes.length - counted;
            expect(await consumedFrom(admin, bucketKey, CAPACITY)).toBeCloseTo(counted, 3);
          }),
          { numRuns: 10, examples: stallExamples(CHECK_LAG_MS) },
        );
        expect(notCounted).toBeGreaterThan(0);
      }, 180_000);
    },
  );
}
