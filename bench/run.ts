/**
 * `npm run bench`: starts every scenario's server, checks one real Check per scenario, warms up, then measures
 * throughput (best of interleaved rounds), latency at a fixed fraction of the baseline's capacity, and RSS
 * growth, and writes bench/results/latest.{json,md}. Positional arguments pick scenarios by name (the
 * baseline always runs, since every ratio is taken against the baseline of the same run).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { installCleanupHandlers, REPO_ROOT, type StartedServer, terminateAll } from "./child.js";
import { grpcFrame } from "./fixtures.js";
import { H2LOAD_INSTALL, type H2loadResult, h2loadVersion } from "./h2load.js";
import { fixedLoad, idle, machineBusyPct, rssGrowth, type Target, throughput, warmUp } from "./measure.js";
import { benchOptions } from "./options.js";
import { assertCheck, type ProbeResult } from "./probe.js";
import { type BenchResults, type ScenarioResult, writeReports } from "./report.js";
import { BASELINE, type Scenario, scenarios } from "./scenarios.js";

const RESULTS_DIR = join(REPO_ROOT, "bench", "results");

interface Running {
  scenario: Scenario;
  server: StartedServer;
  target: Target;
  probe: ProbeResult;
}

const fmt = (r: H2loadResult): string =>
  `${Math.round(r.rps)} req/s, p50 ${r.p50?.toFixed(2)} ms, p99 ${r.p99?.toFixed(2)} ms` +
  (r.failed || r.errored || r.non2xx ? `, ${r.failed} failed ${r.errored} errored ${r.non2xx} non-2xx` : "");

function pickScenarios(names: string[]): Scenario[] {
  if (names.length === 0) return scenarios;
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length)
    throw new Error(`unknown scenario(s) ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name)}`);
  return scenarios.filter((s) => s.name === BASELINE || names.includes(s.name));
}

function assertClean(what: string, r: H2loadResult, requests: number): void {
  if (r.succeeded !== requests || r.non2xx > 0) {
    throw new Error(`${what}: ${r.succeeded}/${requests} succeeded, ${r.failed} failed, ${r.non2xx} non-2xx`);
  }
}

async function main(): Promise<void> {
  const version = h2loadVersion();
  if (!version) {
    console.error(`h2load not found. Install it (Debian/Ubuntu, as root):\n  ${H2LOAD_INSTALL}`);
    process.exit(1);
  }
  installCleanupHandlers();
  const options = benchOptions();
  const selected = pickScenarios(process.argv.slice(2));
  if (!selected.some((s) => s.name === BASELINE)) throw new Error(`scenario list has no "${BASELINE}"`);
  // Measured before any server starts: CPU used by anything else on the box competes with the bench.
  const busyBefore = await machineBusyPct();
  console.log(`machine busy before the run: ${busyBefore}% of ${os.cpus().length} CPUs`);
  if (busyBefore > 10) console.warn("warning: the machine is busy; figures will be noisy and low");
  const tmp = mkdtempSync(join(os.tmpdir(), "keymesh-bench-"));
  // On Ctrl-C the signal handler exits without unwinding to `finally`; exit hooks still run.
  process.once("exit", () => rmSync(tmp, { recursive: true, force: true }));
  const running: Running[] = [];
  try {
    // All servers run side by side so rounds can interleave; an idle Node server costs no CPU.
    for (const scenario of selected) {
      const server = await scenario.start();
      const dataFile = join(tmp, `${scenario.name}.bin`);
      writeFileSync(dataFile, grpcFrame(scenario.request));
      const target = { port: server.port, dataFile };
      const probe = await assertCheck(server.port, scenario.request, scenario.expectedCheckCode ?? 0);
      running.push({ scenario, server, target, probe });
      console.log(
        `${scenario.name}: listening on ${server.port} (pid ${server.pid ?? "in-process"}), probe ok`,
      );
    }
    for (const r of running) {
      await warmUp(r.target, options);
      console.log(`${r.scenario.name}: warmed up with ${options.warmupRequests} requests`);
    }

    // Interleaved rounds (A B A B) so slow drift in machine state hits every scenario alike; best round wins.
    const rounds = new Map<string, H2loadResult[]>(running.map((r) => [r.scenario.name, []]));
    for (let round = 1; round <= options.rounds; round++) {
      for (const r of running) {
        const result = await throughput(
          r.target,
          options,
          join(RESULTS_DIR, `${r.scenario.name}.throughput.log`),
        );
        assertClean(`${r.scenario.name} throughput`, result, options.measuredRequests);
        rounds.get(r.scenario.name)!.push(result);
        console.log(`round ${round} ${r.scenario.name}: ${fmt(result)}`);
      }
    }
    const best = (name: string): H2loadResult => rounds.get(name)!.reduce((a, b) => (b.rps > a.rps ? b : a));
    const capacity = best(BASELINE).rps;

    const idles = new Map<string, H2loadResult>();
    for (const r of running) {
      const result = await idle(r.target, options, join(RESULTS_DIR, `${r.scenario.name}.idle.log`));
      assertClean(`${r.scenario.name} idle`, result, options.idleRequests);
      idles.set(r.scenario.name, result);
      console.log(`idle ${r.scenario.name}: ${fmt(result)}`);
    }

    // Every scenario gets the same offered load, so their latencies are comparable at equal work.
    const offered = capacity * options.latencyLoadFraction;
    const fixed = new Map<string, ScenarioResult["fixedLoad"]>();
    for (const r of running) {
      const result = await fixedLoad(
        r.target,
        options,
        offered,
        join(RESULTS_DIR, `${r.scenario.name}.latency.log`),
      );
      fixed.set(r.scenario.name, result);
      console.log(
        `fixed load ${r.scenario.name} @ ${result.offeredRps} req/s: ${fmt(result)}, p99.9 ${result.p999?.toFixed(2)} ms`,
      );
    }

    const results: ScenarioResult[] = [];
    for (const r of running) {
      const rss = r.server.pid === undefined ? undefined : await rssGrowth(r.target, r.server.pid, options);
      if (rss) {
        console.log(
          `rss ${r.scenario.name}: ${rss.before.rssMiB.toFixed(1)} → ${rss.after.rssMiB.toFixed(1)} MiB ` +
            `(${rss.rssGrowthPct}%), HWM ${rss.before.hwmMiB.toFixed(1)} → ${rss.after.hwmMiB.toFixed(1)} MiB`,
        );
      }
      const name = r.scenario.name;
      results.push({
        name,
        description: r.scenario.description,
        requestBytes: r.scenario.request.length,
        probe: r.probe,
        throughput: { best: best(name), rounds: rounds.get(name)!, xBaseline: best(name).rps / capacity },
        idle: idles.get(name)!,
        fixedLoad: fixed.get(name)!,
        ...(rss ? { rss } : {}),
      });
    }

    const cpu = os.cpus();
    const report: BenchResults = {
      date: new Date().toISOString(),
      quick: options.quick,
      machine: {
        cpus: cpu.length,
        cpuModel: cpu[0]?.model ?? "unknown",
        totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
        platform: os.platform(),
        busyBeforePct: busyBefore,
        release: os.release(),
      },
      node: process.version,
      h2load: version,
      method: `best of ${options.rounds} interleaved rounds of ${options.measuredRequests} requests (h2load -c ${options.clients} -m ${options.streams} -t 1)`,
      options,
      notes: [
        "h2load counts any HTTP 200 as success whatever the grpc-status trailer says; each scenario was probed " +
          "once over node:http2 before load (grpc-status and CheckResponse.status.code checked).",
        "h2load --rps fires a 10 ms timer and sends each client's due requests as one batch (rps/100 per " +
          "client per tick), so fixed-load latencies include queueing behind those batches; compare them across " +
          "scenarios, and read the idle figures for per-request service time.",
        "h2load runs on the same 2-core machine as the server, so absolute req/s understate a dedicated server.",
        "×baseline and the fixed-load rate use the baseline measured in this same run.",
      ],
      scenarios: results,
    };
    const paths = writeReports(RESULTS_DIR, report);
    console.log(`wrote ${paths.json} and ${paths.md}`);
  } finally {
    await Promise.all(running.map((r) => r.server.stop()));
    await terminateAll();
    rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
