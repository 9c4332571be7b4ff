/**
 * `npx tsx bench/workers.ts` (`BENCH_QUICK=1` for a smoke run): Check throughput of keymesh with KEYMESH_WORKERS=1
 * and =2, side by side. Each runs as its own `keymesh serve` (own redis-server, own embedded Postgres, the bench's
 * keys); h2load runs in its own process (-t 1) against one and then the other, alternating for `rounds` rounds so
 * that drift on a shared machine hits both alike. Besides req/s it records the CPU time per Check of keymesh (all
 * its processes) and of redis-server, and the resident set of the primary and of each worker: the figures the
 * scaling section of bench/README.md extrapolates from. Writes bench/results/workers.{json,md}.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createKeyCache } from "../src/cache/key-cache.js";
import type { KeyEntry } from "../src/domain/key-entry.js";
import { installCleanupHandlers, REPO_ROOT, terminateAll } from "./child.js";
import { buildCheckRequest, grpcFrame } from "./fixtures.js";
import { H2LOAD_INSTALL, h2loadVersion, runH2load } from "./h2load.js";
import { type BenchKeys, KEY_SPACE, startBench } from "./keymesh.js";
import { machineBusyPct, readRss, round, watchCpuPerCheck, watchOtherCpu } from "./measure.js";
import { benchOptions } from "./options.js";
import { assertCheck } from "./probe.js";

const WORKER_COUNTS = [1, 2] as const;
const SCENARIOS = [
  { name: "km-limited", key: (k: BenchKeys) => k.limited },
  { name: "km-unlimited", key: (k: BenchKeys) => k.unlimited },
] as const;

/** The node processes a keymesh primary forked (its embedded Postgres is a child too, and is left out). */
function workerPids(primary: number): number[] {
  const children = readFileSync(`/proc/${primary}/task/${primary}/children`, "utf8").trim().split(/\s+/);
  return children
    .map(Number)
    .filter((pid) => pid > 0 && /main\.[jt]s|start\.mjs/.test(readFileSync(`/proc/${pid}/cmdline`, "utf8")));
}

/**
 * What one change notification costs each worker: a workspace change dropping that workspace's cached keys (1% of
 * the cache here) through the cache's id index (key-cache.ts, `invalidate`). Every worker of every instance spends it.
 */
function invalidationMs(entries: number): number {
  const cache = createKeyCache({
    ttlMs: 3_600_000,
    maxEntries: entries,
    negativeTtlMs: 0,
    negativeMaxEntries: 0,
  });
  for (let i = 0; i < entries; i++) {
    const entry = {
      key: { id: `key-${i}`, keySpaceId: "space" },
      workspace: { id: `ws-${i % 100}`, ownerMemberId: undefined },
      owner: undefined,
    } as unknown as KeyEntry;
    cache.set(`digest-${i}`, entry);
  }
  const repeats = 20;
  const started = performance.now();
  for (let r = 0; r < repeats; r++) cache.invalidate({ type: "workspace", id: `ws-${r % 100}` });
  return round((performance.now() - started) / repeats, 2);
}

interface Round {
  rps: number;
  failed: number;
  keymeshCpuUsPerCheck: number;
  redisCpuUsPerCheck: number;
  otherCpuPct: number;
}

async function main(): Promise<void> {
  if (!h2loadVersion()) {
    process.stderr.write(`bench/workers.ts needs h2load: ${H2LOAD_INSTALL}\n`);
    process.exit(1);
  }
  installCleanupHandlers();
  const options = benchOptions();
  const busyBefore = await machineBusyPct();
  const servers = new Map<number, BenchKeys & { stop(): Promise<void> }>();
  for (const workers of WORKER_COUNTS) {
    servers.set(workers, await startBench([], REPO_ROOT, "dist", { KEYMESH_WORKERS: String(workers) }));
  }
  const rounds = new Map<string, Round[]>();
  const files: string[] = [];
  try {
    for (let round_ = 0; round_ < options.rounds; round_++) {
      for (const scenario of SCENARIOS) {
        for (const workers of WORKER_COUNTS) {
          const keys = servers.get(workers)!;
          const request = buildCheckRequest({
            authorization: `Bearer ${scenario.key(keys)}`,
            keySpace: KEY_SPACE,
          });
          if (round_ === 0) await assertCheck(keys.server.grpcPort, request, 0);
          const dataFile = join(
            os.tmpdir(),
            `keymesh-workers-${process.pid}-${scenario.name}-${workers}.bin`,
          );
          writeFileSync(dataFile, grpcFrame(request));
          files.push(dataFile);
          const target = { port: keys.server.grpcPort, dataFile };
          const shape = { clients: options.clients, streams: options.streams };
          if (round_ === 0) await runH2load({ ...target, ...shape, requests: options.warmupRequests });
          const pids = [keys.server.pid, ...workerPids(keys.server.pid)];
          const keymeshCpu = watchCpuPerCheck(pids);
          const redisCpu = watchCpuPerCheck([keys.redisPid]);
          const otherCpu = watchOtherCpu([...pids, keys.redisPid]);
          const result = await runH2load({ ...target, ...shape, requests: options.measuredRequests });
          const checks = result.succeeded;
          const entry = `${scenario.name} ${workers}`;
          rounds.set(entry, [
            ...(rounds.get(entry) ?? []),
            {
              rps: result.rps,
              failed: result.failed + result.errored + result.non2xx,
              keymeshCpuUsPerCheck: round(keymeshCpu(checks), 1),
              redisCpuUsPerCheck: round(redisCpu(checks), 1),
              otherCpuPct: otherCpu(),
            },
          ]);
          process.stderr.write(`round ${round_ + 1} ${entry} worker(s): ${result.rps} req/s\n`);
        }
      }
    }
    const memory = Object.fromEntries(
      [...servers].map(([workers, keys]) => {
        const primary = keys.server.pid;
        const children = workers > 1 ? workerPids(primary) : [];
        return [
          workers,
          {
            primaryRssMiB: round(readRss(primary).rssMiB, 1),
            workerRssMiB: children.map((pid) => round(readRss(pid).rssMiB, 1)),
          },
        ];
      }),
    );
    const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
    const summary = SCENARIOS.map(({ name }) => {
      const of = (workers: number) => rounds.get(`${name} ${workers}`)!;
      const ratios = of(1).map((r, i) => of(2)[i]!.rps / r.rps);
      const figures = (workers: number) => ({
        medianRps: round(median(of(workers).map((r) => r.rps)), 0),
        keymeshCpuUsPerCheck: median(of(workers).map((r) => r.keymeshCpuUsPerCheck)),
        redisCpuUsPerCheck: median(of(workers).map((r) => r.redisCpuUsPerCheck)),
        rounds: of(workers),
      });
      return {
        scenario: name,
        workers1: figures(1),
        workers2: figures(2),
        medianRatio2to1: round(median(ratios), 2),
      };
    });
    const invalidation = Object.fromEntries([10_000, 100_000].map((n) => [n, invalidationMs(n)]));
    const report = {
      when: new Date().toISOString(),
      node: process.version,
      cpus: os.availableParallelism(),
      h2load: h2loadVersion(),
      quick: options.quick,
      shape: { clients: options.clients, streams: options.streams, requests: options.measuredRequests },
      machineBusyPctBefore: busyBefore,
      summary,
      memory,
      invalidationMsByCachedKeys: invalidation,
    };
    writeFileSync(join(REPO_ROOT, "bench/results/workers.json"), `${JSON.stringify(report, null, 2)}\n`);
    const lines = [
      "# keymesh workers: 1 against 2",
      "",
      `${report.when}, Node ${report.node}, ${report.cpus} CPUs, ${report.h2load}; h2load -t 1 -c ${options.clients} -m ${options.streams}, ${options.measuredRequests} requests per run, ${options.rounds} rounds; machine ${busyBefore}% busy before the run${options.quick ? "; BENCH_QUICK: figures mean nothing" : ""}.`,
      "",
      "| scenario | 1 worker req/s | 2 workers req/s | 2/1 (median of rounds) | keymesh CPU µs/Check (1 / 2) | redis CPU µs/Check (1 / 2) |",
      "| --- | ---: | ---: | ---: | ---: | ---: |",
      ...summary.map((s) => {
        const one = s.workers1;
        const two = s.workers2;
        return `| ${s.scenario} | ${one.medianRps} | ${two.medianRps} | ${s.medianRatio2to1} | ${one.keymeshCpuUsPerCheck} / ${two.keymeshCpuUsPerCheck} | ${one.redisCpuUsPerCheck} / ${two.redisCpuUsPerCheck} |`;
      }),
      "",
      `Resident set after the runs: 1 worker (one process) ${memory[1]!.primaryRssMiB} MiB; 2 workers: primary ${memory[2]!.primaryRssMiB} MiB, workers ${memory[2]!.workerRssMiB.join(" and ")} MiB.`,
      "",
      `One workspace change dropping 1% of each worker's key cache takes ${invalidation[10_000]} ms with 10,000 cached keys, ${invalidation[100_000]} ms with 100,000 (the default KEYMESH_CACHE_MAX_ENTRIES).`,
      "",
    ];
    writeFileSync(join(REPO_ROOT, "bench/results/workers.md"), lines.join("\n"));
    process.stdout.write(lines.join("\n"));
  } finally {
    for (const file of files) rmSync(file, { force: true });
    for (const keys of servers.values()) await keys.stop();
    await terminateAll();
  }
}

await main();
