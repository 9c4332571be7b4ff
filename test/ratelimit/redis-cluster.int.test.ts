import { Cluster, Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createRedisLimiter } from "../../src/ratelimit/redis-limiter.js";
import { redisServerAvailable, startRedisCluster } from "../support/redis-server.js";
import { delayingClient } from "./delaying-client.js";
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

  it("gives back a charge whose reply came after the deadline, in the bucket's own slot, on every master", async () => {
    const real = new Cluster(cluster.nodes);
    const { client, delayNext } = delayingClient(real);
    const limiter = createRedisLimiter({ client, commandTimeoutMs: 300 });
    await limiter.ready();
    const tags = Array.from({ length: 12 }, freshTag);
    const buckets = [bucket("k:year", 10, 31_536_000), bucket("w:year", 20, 31_536_000, "workspace")];
    for (const tag of tags) {
      expect((await limiter.consume({ tag, buckets, cost: 1 })).allowed).toBe(true);
      const delivered = delayNext(400);
      await expect(limiter.consume({ tag, buckets, cost: 3 })).rejects.toThrow(/did not answer/);
      await delivered;
    }
    for (let i = 0; i < 300 && limiter.refunds.confirmed < tags.length; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    // Every refund ran: a marker in another slot than the buckets would have failed with CROSSSLOT.
    expect(limiter.refunds).toMatchObject({ started: tags.length, confirmed: tags.length, abandoned: 0 });
    for (const tag of tags) {
      const tokens = await Promise.all(
        ["k:year", "w:year"].map(async (id) => Number(await real.hget(`km:rl:{${tag}}:${id}`, "t"))),
      );
      expect(tokens[0]).toBeCloseTo(9, 3);
      expect(tokens[1]).toBeCloseTo(19, 3);
    }
    await limiter.close();
    await real.quit();
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
