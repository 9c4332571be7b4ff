/**
 * Graceful shutdown of a keymesh process (started as `npm run dev` does, through tsx) while clients keep calling it
 * over gRPC and HTTP: SIGTERM turns health NOT_SERVING at once, calls keep succeeding for the drain period, a call in
 * flight when the listeners close still completes, and the process exits 0. Needs Postgres.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { ROOT_KEY_SPACE_ID } from "../src/admin/key-spaces.js";
import { createTestDatabase, type TestDatabase } from "./support/database.js";
import { createEnvoyClient } from "./support/envoy-client.js";
import { type KeymeshProcess, startKeymeshProcess } from "./support/keymesh-process.js";
import {
  type HealthResponse,
  healthClient,
  type ReflectionResponse,
  reflectionClient,
} from "./transport/connect/grpc-clients.js";

const DRAIN_MS = 4_000;
// Calls that start this close to the end of the drain may meet the closing listeners; they prove nothing either way.
const EDGE_MS = 1_000;
// Generous client and decision deadlines: on a loaded 2-core machine a call can take a second, which is no failure.
const CALL_TIMEOUT_MS = 5_000;

interface Outcome {
  loop: "grpc health" | "grpc check" | "http readyz" | "http verify";
  startedAt: number;
  ok: boolean;
  notServing: boolean;
  detail: string;
}

let db: TestDatabase;
let km: KeymeshProcess;

beforeAll(async () => {
  db = await createTestDatabase(inject("databaseUrl"));
  km = await startKeymeshProcess({
    command: process.execPath,
    args: ["--import", "tsx", "src/main.ts", "serve"],
    databaseUrl: db.url,
    env: {
      KEYMESH_DRAIN_MS: String(DRAIN_MS),
      KEYMESH_SHUTDOWN_GRACE_MS: "10000",
      KEYMESH_CHECK_DEADLINE_MS: String(CALL_TIMEOUT_MS),
    },
  });
});

afterAll(async () => {
  km?.kill();
  await db?.drop();
});

describe("SIGTERM drain (Postgres, a keymesh process)", () => {
  it("reports NOT_SERVING before any call fails, answers through the drain period, finishes in-flight calls, exits 0", async () => {
    const grpcAddress = `127.0.0.1:${km.grpcPort}`;
    const httpUrl = `http://127.0.0.1:${km.httpPort}`;
    const health = healthClient(grpcAddress);
    const envoy = createEnvoyClient(grpcAddress);
    const reflection = reflectionClient(grpcAddress);
    const outcomes: Outcome[] = [];
    let running = true;
    const deadline = performance.now() + 60_000;

    const loop = async (name: Outcome["loop"], call: () => Promise<Omit<Outcome, "loop" | "startedAt">>) => {
      while (running && performance.now() < deadline) {
        const startedAt = performance.now();
        try {
          outcomes.push({ loop: name, startedAt, ...(await call()) });
        } catch (error) {
          const detail = (error as { code?: unknown }).code ?? (error as Error).message;
          outcomes.push({ loop: name, startedAt, ok: false, notServing: false, detail: String(detail) });
        }
        await sleep(15);
      }
    };
    const decision = async () => {
      const res = await envoy.check(
        {
          headers: { authorization: `Bearer ${km.rootKey}` },
          contextExtensions: { "keymesh.key_space": ROOT_KEY_SPACE_ID },
        },
        CALL_TIMEOUT_MS,
      );
      return { code: res.status?.code, denied: res.denied_response?.status?.code ?? "" };
    };
    // The root key is refused on the data plane; whatever KeyVerify answers for it, it must keep answering.
    const verifyOnce = async () => {
      const res = await fetch(`${httpUrl}/keymesh.v1.KeyVerify/Verify`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ key: km.rootKey, keySpaceId: ROOT_KEY_SPACE_ID }),
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      return `${res.status} ${await res.text()}`;
    };
    const baselineVerify = await verifyOnce();
    expect(baselineVerify).toMatch(/^200 /);
    // Whatever Check decides for this request, it must keep deciding it: a decision turned into an error is a failure.
    const baseline = await decision();
    expect(baseline.code).not.toBe(14);
    const loops = Promise.all([
      loop("grpc health", async () => {
        const { status } = await health.check("");
        return { ok: true, notServing: status === "NOT_SERVING", detail: status };
      }),
      loop("grpc check", async () => {
        const now = await decision();
        return {
          ok: now.code === baseline.code && now.denied === baseline.denied,
          notServing: false,
          detail: JSON.stringify(now),
        };
      }),
      loop("http readyz", async () => {
        const res = await fetch(`${httpUrl}/readyz`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
        await res.text();
        return {
          ok: res.status === 200 || res.status === 503,
          notServing: res.status === 503,
          detail: String(res.status),
        };
      }),
      loop("http verify", async () => {
        const now = await verifyOnce();
        return { ok: now === baselineVerify, notServing: false, detail: now };
      }),
    ]);

    let sigterm = Number.NaN;
    let exitedAfter = Number.NaN;
    const watched: string[] = [];
    const answers: ReflectionResponse[] = [];
    let exit: Awaited<KeymeshProcess["exited"]>;
    let watchEnded: Promise<string>;
    let inFlightDone: Promise<string>;
    try {
      // A Watch stream, and a reflection stream that stays open as a call in flight through the close.
      const watch = health.watch("");
      watchEnded = new Promise<string>((resolve) => {
        watch.on("data", (response: HealthResponse) => watched.push(response.status));
        watch.on("error", (error: { code?: number }) => resolve(`error ${error.code}`));
        watch.on("end", () => resolve("end"));
      });
      const inFlight = reflection.open();
      inFlight.on("data", (response: ReflectionResponse) => answers.push(response));
      inFlightDone = new Promise<string>((resolve) => {
        inFlight.on("error", (error: { code?: number }) => resolve(`error ${error.code}`));
        inFlight.on("end", () => resolve("end"));
      });
      inFlight.write({ list_services: "" });
      // Generous polls: on a loaded machine an answer can take seconds, which is not what this test is about.
      await expect.poll(() => answers.length, { timeout: 10_000 }).toBe(1);
      await expect.poll(() => watched, { timeout: 10_000 }).toEqual(["SERVING"]);
      await sleep(500);

      sigterm = performance.now();
      km.child.kill("SIGTERM");
      // Once the drain is over and the listeners close, the open stream still gets its answer.
      await km.waitForLog(/^drain period over/, DRAIN_MS + 10_000);
      inFlight.write({ file_containing_symbol: "envoy.service.auth.v3.Authorization" });
      await expect.poll(() => answers.length, { timeout: 8_000 }).toBe(2);
      inFlight.end();
      exit = await km.exited;
      exitedAfter = performance.now() - sigterm;
    } finally {
      running = false;
      await loops;
      health.close();
      envoy.close();
      reflection.close();
    }

    const report = () =>
      outcomes
        .map((o) => `${(o.startedAt - sigterm).toFixed(0)}ms ${o.loop} ${o.ok ? "ok" : "FAILED"} ${o.detail}`)
        .join("\n");
    expect(exit, km.output()).toEqual({ code: 0, signal: null });
    expect(exitedAfter).toBeGreaterThanOrEqual(DRAIN_MS);
    expect(await inFlightDone).toBe("end");
    expect(answers[1]?.message_response).toBe("file_descriptor_response");
    expect(watched).toEqual(["SERVING", "NOT_SERVING"]);
    expect(await watchEnded).toBe("end");

    for (const [transport, observer] of [
      ["grpc", "grpc health"],
      ["http", "http readyz"],
    ] as const) {
      const mine = outcomes.filter((o) => o.loop.startsWith(transport));
      const firstNotServing = mine.find((o) => o.notServing);
      expect(firstNotServing, `${observer} never saw NOT_SERVING\n${report()}`).toBeDefined();
      // SIGTERM turns health NOT_SERVING at once.
      expect(firstNotServing!.startedAt - sigterm).toBeLessThan(2_000);
      const failedBefore = mine.filter((o) => !o.ok && o.startedAt <= firstNotServing!.startedAt);
      expect(failedBefore, report()).toEqual([]);
      // The drain period: every call started after NOT_SERVING until shortly before the listeners close succeeds.
      const during = mine.filter(
        (o) => o.startedAt >= firstNotServing!.startedAt && o.startedAt < sigterm + DRAIN_MS - EDGE_MS,
      );
      expect(
        during.filter((o) => !o.ok),
        report(),
      ).toEqual([]);
      for (const name of new Set(mine.map((o) => o.loop))) {
        expect(
          during.filter((o) => o.loop === name).length,
          `${name} calls during the drain`,
        ).toBeGreaterThanOrEqual(5);
      }
      // Readiness stays NOT_SERVING once reported.
      expect(
        mine.filter(
          (o) => o.loop === observer && o.startedAt > firstNotServing!.startedAt && o.ok && !o.notServing,
        ),
      ).toEqual([]);
    }

    const order = km.logs().map((line) => line.message);
    const at = (pattern: RegExp) => order.findIndex((message) => pattern.test(message));
    expect(at(/^shutting down$/)).toBeGreaterThan(-1);
    expect(at(/^draining/)).toBeGreaterThan(at(/^shutting down$/));
    expect(at(/^drain period over/)).toBeGreaterThan(at(/^draining/));
    expect(at(/^stopped$/)).toBeGreaterThan(at(/^drain period over/));
  }, 90_000);
});
