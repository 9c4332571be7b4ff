import type * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHealthRoutes } from "../../../src/transport/connect/health.js";
import { scopeHealth } from "../../../src/transport/health-source.js";
import { healthWithSwitchableDatabase } from "../../support/health.js";
import { type HealthResponse, healthClient } from "./grpc-clients.js";
import { serveH2c } from "./serve.js";

const database = healthWithSwitchableDatabase();
let server: Awaited<ReturnType<typeof serveH2c>>;
let client: ReturnType<typeof healthClient>;

beforeAll(async () => {
  server = await serveH2c(createHealthRoutes(scopeHealth(database.health, ["keymesh.v1.KeyVerify"])));
  client = healthClient(server.address);
});

afterAll(async () => {
  client?.close();
  await server?.close();
});

/** Reads `count` messages from a Watch stream, calling `afterFirst` once the first has arrived. */
function take(stream: grpc.ClientReadableStream<HealthResponse>, count: number, afterFirst: () => void) {
  return new Promise<string[]>((resolve, reject) => {
    const seen: string[] = [];
    stream.on("data", (response: HealthResponse) => {
      seen.push(response.status);
      if (seen.length === 1) afterFirst();
      if (seen.length === count) {
        stream.cancel();
        resolve(seen);
      }
    });
    stream.on("error", (error: grpc.ServiceError) => {
      if (error.code !== 1) reject(error); // 1 = CANCELLED, our own doing
    });
  });
}

describe("grpc.health.v1 over Connect, queried by grpc-js", () => {
  it("reports the server and listed services as SERVING, then NOT_SERVING", async () => {
    expect((await client.check("")).status).toBe("SERVING");
    expect((await client.check("keymesh.v1.KeyVerify")).status).toBe("SERVING");
    database.setDatabaseUp(false);
    // The probe result is reused for 10 ms, so the change shows within a few polls.
    await expect.poll(async () => (await client.check("")).status).toBe("NOT_SERVING");
    expect((await client.check("keymesh.v1.KeyVerify")).status).toBe("NOT_SERVING");
    database.setDatabaseUp(true);
    await expect.poll(async () => (await client.check("")).status).toBe("SERVING");
  });

  it("fails Check for an unknown service with NOT_FOUND", async () => {
    await expect(client.check("no.such.Service")).rejects.toMatchObject({ code: 5 });
  });

  it("lists every known service", async () => {
    const { statuses } = await client.list();
    expect(Object.keys(statuses).sort()).toEqual(["", "keymesh.v1.KeyVerify"]);
    expect(statuses[""]?.status).toBe("SERVING");
  });

  it("streams the current status on Watch, then each change", async () => {
    const seen = await take(client.watch(""), 2, () => database.setDatabaseUp(false));
    expect(seen).toEqual(["SERVING", "NOT_SERVING"]);
    database.setDatabaseUp(true);
  });

  it("answers Watch for an unknown service with SERVICE_UNKNOWN rather than an error", async () => {
    const seen = await take(client.watch("no.such.Service"), 1, () => {});
    expect(seen).toEqual(["SERVICE_UNKNOWN"]);
  });
});
