import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { redisServerAvailable, startRedisCluster } from "../support/redis-server.js";
import { bucket, freshTag } from "./limiter-behaviour.js";

describe.skipIf(!redisServerAvailable())("redis limiter on a 3-master Redis Cluster", () => {
  let cluster: Awaited<ReturnType<typeof startRedisCluster>>;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("charges all of a request's buckets in one slot, for tags spread over every master", async () => {
    const limiter = createRedisLimiter({ cluster: { nodes: cluster.nodes }, commandTimeoutMs: 2000 });
    await limiter.ready();
    const tags = Array.from({ length: 24 }, freshTag);
    const buckets = [bucket("k:minute", 3), bucket("w:minute", 5, 3600, "workspace")];
    for (let round = 0; round < 3; round++) {
      const results = await Promise.all(tags.map((tag) => limiter.consume({ tag, buckets, cost: 1 })));
      for (const result of results) {
        expect(result.allowed).toBe(true);
        expect(result.statuses.map((s) => s.remaining)).toEqual([2 - round, 4 - round]);
      }
    }
    const denied = await Promise.all(tags.map((tag) => limiter.consume({ tag, buckets, cost: 1 })));
    expect(denied.every((r) => !r.allowed)).toBe(true);
    // All four remaining workspace tokens are still there: the denial charged nothing.
    const spare = await limiter.consume({ tag: tags[0] as string, buckets: [buckets[1]!], cost: 1 });
    expect(spare.statuses[0]?.remaining).toBe(1);

    // 24 random tags land on every master with overwhelming probability; each master holds whole requests.
    const sizes = await Promise.all(
      cluster.nodes.map(async ({ host, port }) => {
        const node = new Redis({ host, port });
        const size = await node.dbsize();
        await node.quit();
        return size;
      }),
    );
    expect(sizes.filter((n) => n > 0).length).toBeGreaterThanOrEqual(2);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(48);
    expect(sizes.every((n) => n % 2 === 0)).toBe(true);
    await limiter.close();
  });

  it("works with a Cluster client the caller owns", async () => {
    const client = new Cluster(cluster.nodes);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 2000 });
    await limiter.ready();
    const result = await limiter.consume({
      tag: freshTag(),
      buckets: [bucket("a", 2), bucket("b", 2)],
      cost: 2,
    });
    expect(result.statuses.map((s) => s.remaining)).toEqual([0, 0]);
    await limiter.close();
    await client.quit();
  });
});
