/**
 * `npx tsx bench/cold.ts`: the first Check for a key (key cache cold), which h2load cannot drive because it sends
 * one request body. A keymesh with a 10-entry key cache gets COLD_KEYS freshly minted keys cycled in order by a
 * node:http2 load generator in this process (-c 4 -m 32 like the main bench), so every Check misses the cache
 * and reads Postgres (embedded): an HMAC, one indexed query and the cache fill. The same generator then drives
 * the same server with one key (cache warm) and the baseline server, so the generator's own limit is visible and
 * the ratio is taken within one tool. Writes bench/results/cold.{json,md}.
 */

import { writeFileSync } from "node:fs";
import http2 from "node:http2";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import { CheckResponseSchema } from "../gen/envoy/service/auth/v3/external_auth_pb.js";
import { OwnerType } from "../gen/keymesh/v1/types_pb.js";
import { installCleanupHandlers, REPO_ROOT, spawnServer, terminateAll } from "./child.js";
import { buildCheckRequest, grpcFrame } from "./fixtures.js";
import { CHECK_PATH } from "./h2load.js";
import { createTrumpet, KEY_SPACE, startKeymesh } from "./keymesh.js";
import { round } from "./measure.js";
import { benchOptions } from "./options.js";

/** Distinct keys cycled: more than the 10-entry key cache, the 4,096-entry digest memo and the 128 in flight. */
const COLD_KEYS = 5000;
const CLIENTS = 4;
const STREAMS = 32;

interface Run {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  /** Answers that were not grpc-status 0 with the expected CheckResponse code (e.g. a missed deadline). */
  errors: number;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

/**
 * Sends `total` Checks over CLIENTS sessions with STREAMS in flight each, cycling `frames`; checks every answer and
 * counts the wrong ones, so one missed deadline is reported rather than ending the run.
 */
async function drive(port: number, frames: Buffer[], total: number, expectCode = 0): Promise<Run> {
  const sessions = Array.from({ length: CLIENTS }, () => http2.connect(`http://127.0.0.1:${port}`));
  const latencies = new Float64Array(total);
  let next = 0;
  let done = 0;
  let errors = 0;
  let failed = false;
  const started = performance.now();
  await new Promise<void>((resolve, reject) => {
    const send = (session: http2.ClientHttp2Session): void => {
      if (failed || next >= total) return;
      const i = next++;
      const t0 = performance.now();
      const stream = session.request({
        ":method": "POST",
        ":path": CHECK_PATH,
        "content-type": "application/grpc",
        te: "trailers",
      });
      const chunks: Buffer[] = [];
      let grpcStatus: string | undefined;
      stream.on("data", (c: Buffer) => chunks.push(c));
      stream.on("trailers", (t) => {
        grpcStatus = String(t["grpc-status"]);
      });
      // A transport error means the server or the session is gone: no figure from this run would mean anything.
      stream.on("error", (error) => {
        failed = true;
        reject(error);
      });
      stream.on("end", () => {
        latencies[i] = performance.now() - t0;
        const body = Buffer.concat(chunks);
        const code = body.length > 5 ? fromBinary(CheckResponseSchema, body.subarray(5)).status?.code : -1;
        if (grpcStatus !== "0" || code !== expectCode) errors++;
        if (++done === total) resolve();
        else send(session);
      });
      stream.end(frames[i % frames.length]);
    };
    for (const s of sessions) for (let k = 0; k < STREAMS; k++) send(s);
  });
  const seconds = (performance.now() - started) / 1000;
  for (const s of sessions) s.close();
  const sorted = latencies.sort();
  return {
    rps: Math.round(total / seconds),
    p50: round(percentile(sorted, 0.5)),
    p99: round(percentile(sorted, 0.99)),
    requests: total,
    errors,
  };
}

async function main(): Promise<void> {
  installCleanupHandlers();
  const options = benchOptions();
  const total = options.quick ? 10_000 : 60_000;
  const keymesh = await startKeymesh({ KEYMESH_CACHE_MAX_ENTRIES: "10" });
  const baseline = await spawnServer("bench/baseline-server.ts");
  try {
    const { keySpaceId, workspaceId } = await createTrumpet(keymesh);
    const secrets: string[] = [];
    // Minted over a few parallel admin calls: 2,000 one at a time would take minutes.
    for (let i = 0; i < COLD_KEYS; i += 16) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(16, COLD_KEYS - i) }, (_, j) =>
          keymesh.admin.createKey({
            keySpaceId,
            workspaceId,
            ownerType: OwnerType.ORGANIZATION,
            name: `cold-${i + j}`,
          }),
        ),
      );
      secrets.push(...batch.map((b) => b.secret));
    }
    const frames = secrets.map((s) =>
      grpcFrame(buildCheckRequest({ authorization: `Bearer ${s}`, keySpace: KEY_SPACE })),
    );
    // Warm-up on both paths: JIT, the Postgres pool and its buffers settle. The 10-entry key cache keeps only the
    // last keys, so the measured runs still miss it on every Check.
    await drive(keymesh.grpcPort, frames.slice(0, 1), 20_000);
    await drive(keymesh.grpcPort, frames, options.quick ? COLD_KEYS : 2 * COLD_KEYS);
    await drive(baseline.port, frames.slice(0, 1), 20_000);
    const best = async (port: number, f: Buffer[]): Promise<Run> => {
      const runs: Run[] = [];
      for (let r = 0; r < 3; r++) runs.push(await drive(port, f, total));
      return runs.reduce((a, b) => (b.rps > a.rps ? b : a));
    };
    const cold = await best(keymesh.grpcPort, frames);
    const warm = await best(keymesh.grpcPort, frames.slice(0, 1));
    const base = await best(baseline.port, frames.slice(0, 1));
    const result = {
      date: new Date().toISOString(),
      quick: options.quick,
      method: `node:http2 generator in the bench process, ${CLIENTS} sessions × ${STREAMS} streams, best of 3 runs of ${total}`,
      coldKeys: COLD_KEYS,
      keyCacheEntries: 10,
      runs: { "km-cold-key": cold, "km-warm-same-generator": warm, "baseline-same-generator": base },
      xBaseline: round(cold.rps / base.rps),
    };
    const dir = join(REPO_ROOT, "bench", "results");
    writeFileSync(join(dir, "cold.json"), `${JSON.stringify(result, null, 2)}\n`);
    const row = (name: string, r: Run): string =>
      `| ${name} | ${r.rps.toLocaleString("en-US")} | ${round(r.rps / base.rps)} | ${r.p50} | ${r.p99} | ${r.errors} |`;
    const md = [
      "# keymesh bench: first Check for a key (cold cache)",
      "",
      `${result.date} · ${result.method}. ${COLD_KEYS} freshly minted keys cycled against a 10-entry key cache, so every`,
      "Check misses the cache: HMAC, one indexed Postgres query (embedded), cache fill. Expected status code 0; " +
        "'errors' counts other answers (a decision missing keymesh's 150 ms deadline is answered as an error).",
      "",
      "| run | req/s | ×baseline (same generator) | p50 ms | p99 ms | errors |",
      "|---|---:|---:|---:|---:|---:|",
      row("km-cold-key", cold),
      row("km-warm (same generator, one key)", warm),
      row("baseline (same generator)", base),
      "",
    ].join("\n");
    writeFileSync(join(dir, "cold.md"), md);
    console.log(md);
  } finally {
    await keymesh.stop();
    await baseline.stop();
    await terminateAll();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
