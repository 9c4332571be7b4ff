/** The readiness database probe against the suite's Postgres (needs Postgres) and against a host that hangs. */
import net from "node:net";
import postgres from "postgres";
import { afterAll, describe, expect, inject, it } from "vitest";
import { createDatabaseProbe } from "../../src/store/probe.js";
import { startTcpProxy, type TcpProxy } from "../support/tcp-proxy.js";

const pools: postgres.Sql[] = [];
const proxies: TcpProxy[] = [];
afterAll(async () => {
  for (const proxy of proxies) proxy.restore();
  await Promise.all(pools.map((sql) => sql.end({ timeout: 1 })));
  await Promise.all(proxies.map((proxy) => proxy.close()));
});

async function throughProxy() {
  const url = new URL(inject("databaseUrl"));
  const proxy = await startTcpProxy({ host: url.hostname, port: Number(url.port) });
  proxies.push(proxy);
  url.host = `127.0.0.1:${proxy.port}`;
  const sql = postgres(url.toString(), { max: 2, connect_timeout: 10, onnotice: () => {} });
  pools.push(sql);
  return { proxy, sql };
}

describe("database probe (Postgres)", () => {
  it("is true while the database answers", async () => {
    const { sql } = await throughProxy();
    // A generous timeout: this is about the answer, and a loaded machine can take a while to give it.
    expect(await createDatabaseProbe(sql, { timeoutMs: 5_000 })()).toBe(true);
  });

  it("is false within its timeout when the database host stops answering, and true again once it is back", async () => {
    const { proxy, sql } = await throughProxy();
    expect(await createDatabaseProbe(sql, { timeoutMs: 5_000 })()).toBe(true);
    const probe = createDatabaseProbe(sql, { timeoutMs: 300 });
    proxy.cut();
    const started = performance.now();
    expect(await probe()).toBe(false);
    // Well before postgres.js would give up on the connection (connect_timeout, 10 s).
    expect(performance.now() - started).toBeLessThan(3_000);
    proxy.restore();
    // postgres.js reconnects on its own; the hung connect attempt gives up after its connect_timeout.
    await expect.poll(() => probe(), { timeout: 15_000, interval: 200 }).toBe(true);
  });

  it("is false for a refused connection", async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const { port } = closed.address() as net.AddressInfo;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sql = postgres(`postgres://u:p@127.0.0.1:${port}/x`, { max: 1, connect_timeout: 2 });
    pools.push(sql);
    expect(await createDatabaseProbe(sql, { timeoutMs: 1_000 })()).toBe(false);
  });
});
