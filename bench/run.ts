/**
 * `npm run bench`: starts every scenario's server, checks one real Check per scenario, warms up, then measures
 * throughput (best of interleaved rounds), idle latency, latency at a fixed fraction of the baseline's
 * capacity, and RSS growth, and writes bench/results/latest.{json,md}. Positional arguments pick scenarios by
 * name (the baseline always runs: every ratio is taken against the baseline of the same run).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { installCleanupHandlers, REPO_ROOT, type StartedServer, terminateAll } from "./child.js";
import { grpcFrame } from "./fixtures.js";
import { checkGoals } from "./goals.js";
import {
  durationsFromLog,
  H2LOAD_INSTALL,
  type H2loadResult,
  h2loadVersion,
  pooledPercentiles,
} from "./h2load.js";
import {
  fixedLoad,
  idle,
  machineBusyPct,
  median,
  rssGrowth,
  type Target,
  throughput,
  warmUp,
  watchCpuPerCheck,
  watchOtherCpu,
} from "./measure.js";
import { type BenchOptions, benchOptions } from "./options.js";
import { assertCheck, type ProbeResult } from "./probe.js";
import { type BenchResults, type Round, type ScenarioResult, writeReports } from "./report.js";
import { BASELINE, type Scenario, scenarios } from "./scenarios.js";

const RESULTS_DIR = join(REPO_ROOT, "bench", "results");
const logFile = (name: string, phase: string): string => join(RESULTS_DIR, `${name}.${phase}.log`);

interface Running {
  scenario: Scenario;
  server: StartedServer;
  request: Uint8Array;
  target: Target;
  probe?: ProbeResult;
}

const fmt = (r: H2loadResult): string =>
  `${Math.round(r.rps)} req/s, p50 ${r.p50?.toFixed(2)} ms, p99 ${r.p99?.toFixed(2)} ms` +
  (r.failed || r.errored || r.non2xx ? `, ${r.failed} failed ${r.errored} errored ${r.non2xx} non-2xx` : "");

function pickScenarios(names: string[]): Scenario[] {
  const unknown = names.filter((n) => !scenarios.some((s) => s.name === n));
  if (unknown.length)
    throw new Error(`unknown scenario(s) ${unknown.join(", ")}; known: ${scenarios.map((s) => s.name)}`);
  const picked = names.length
    ? scenarios.filter((s) => s.name === BASELINE || names.includes(s.name))
    : scenarios;
  if (!picked.some((s) => s.name === BASELINE)) throw new Error(`scenario list has no "${BASELINE}"`);
  return picked;
}

function assertClean(what: string, r: H2loadResult, requests: number): void {
  if (r.succeeded !== requests || r.non2xx > 0) {
    throw new Error(`${what}: ${r.succeeded}/${requests} succeeded, ${r.failed} failed, ${r.non2xx} non-2xx`);
  }
}

const serverPids = (running: Running[]): number[] =>
  running.flatMap((r) => [...(r.server.pid ? [r.server.pid] : []), ...(r.server.helperPids ?? [])]);

/**
 * Interleaved rounds (A B C, B C A, C A B …) so drift in machine state hits every scenario alike: each round starts one
 * scenario later, so none is always the one measured furthest from the baseline. Rounds are kept in round order.
 */
async function throughputRounds(running: Running[], options: BenchOptions): Promise<Map<string, Round[]>> {
  const rounds = new Map<string, Round[]>(running.map((r) => [r.scenario.name, []]));
  for (let round = 1; round <= options.rounds; round++) {
    const order = running.map((_, i) => running[(i + round - 1) % running.length]!);
    for (const { scenario, server, target } of order) {
      // Read outside the CPU watch, so the /metrics requests are not charged to the checks.
      const errorsBefore = await server.errorVerdicts?.();
      const otherCpu = watchOtherCpu(serverPids(running));
      const cpu = watchCpuPerCheck(server.pid === undefined ? [] : [server.pid]);
      const helperCpu = watchCpuPerCheck(server.helperPids ?? []);
      const result = await throughput(target, options, logFile(scenario.name, "throughput"));
      const cpuUsPerCheck = cpu(result.succeeded);
      const helperCpuUsPerCheck = helperCpu(result.succeeded);
      const otherCpuPct = otherCpu();
      const errorVerdicts = await errorsSince(server, errorsBefore);
      assertClean(`${scenario.name} throughput`, result, options.measuredRequests);
      rounds
        .get(scenario.name)!
        .push({ ...result, otherCpuPct, cpuUsPerCheck, helperCpuUsPerCheck, ...optional(errorVerdicts) });
      console.log(
        `round ${round} ${scenario.name}: ${fmt(result)}, ${cpuUsPerCheck.toFixed(1)} µs CPU/check, ` +
          `other CPU ${otherCpuPct}%` +
          (errorVerdicts ? `, ${errorVerdicts} answered without a decision` : ""),
      );
    }
  }
  return rounds;
}

async function measure(running: Running[], options: BenchOptions): Promise<ScenarioResult[]> {
  for (const r of running) {
    await warmUp(r.target, options);
    console.log(`${r.scenario.name}: warmed up with ${options.warmupRequests} requests`);
  }
  const rounds = await throughputRounds(running, options);
  const best = (name: string): Round => rounds.get(name)!.reduce((a, b) => (b.rps > a.rps ? b : a));
  const capacity = best(BASELINE).rps;
  const leastCpu = (name: string): Round =>
    rounds.get(name)!.reduce((a, b) => (b.cpuUsPerCheck < a.cpuUsPerCheck ? b : a));
  const baselineCpu = leastCpu(BASELINE).cpuUsPerCheck;
  // Each round's req/s over the baseline's in that same round: machine speed drifts by tens of percent over a run
  // here, and a ratio of two rounds measured close together cancels most of it, where best-of-each does not.
  const roundRatios = (name: string): number[] =>
    rounds.get(name)!.map((r, i) => r.rps / rounds.get(BASELINE)![i]!.rps);

  const idles = new Map<string, H2loadResult>();
  for (const { scenario, target } of running) {
    const result = await idle(target, options, logFile(scenario.name, "idle"));
    assertClean(`${scenario.name} idle`, result, options.idleRequests);
    idles.set(scenario.name, result);
    console.log(`idle ${scenario.name}: ${fmt(result)}`);
  }

  // Every scenario gets the same offered load, so their latencies are compared at equal work.
  const fixedRuns = new Map<string, (H2loadResult & { offeredRps: number })[]>(
    running.map((r) => [r.scenario.name, []]),
  );
  const offered = capacity * options.latencyLoadFraction;
  const fixedErrors = new Map<string, number>();
  // Every run's request times, pooled per scenario: one run's p99 is set by its few worst stalls, so a percentile
  // over all runs' requests estimates the load's p99 better than any one run's.
  const fixedDurations = new Map<string, Float64Array[]>(running.map((r) => [r.scenario.name, []]));
  for (let round = 1; round <= options.latencyRounds; round++) {
    for (const { scenario, server, target } of running) {
      const errorsBefore = await server.errorVerdicts?.();
      const file = logFile(scenario.name, "latency");
      const result = await fixedLoad(target, options, offered, file);
      fixedDurations.get(scenario.name)!.push(durationsFromLog(file).sorted);
      const errorVerdicts = await errorsSince(server, errorsBefore);
      if (errorVerdicts !== undefined)
        fixedErrors.set(scenario.name, (fixedErrors.get(scenario.name) ?? 0) + errorVerdicts);
      fixedRuns.get(scenario.name)!.push(result);
      console.log(
        `fixed load ${round} ${scenario.name} @ ${result.offeredRps} req/s: ${fmt(result)}, ` +
          `p99.9 ${result.p999?.toFixed(2)} ms`,
      );
    }
  }
  const medianByP99 = (name: string): H2loadResult & { offeredRps: number } => {
    const sorted = [...fixedRuns.get(name)!].sort((a, b) => (a.p99 ?? 0) - (b.p99 ?? 0));
    return sorted[Math.floor((sorted.length - 1) / 2)]!;
  };
  const baselineP99 = medianByP99(BASELINE).p99;
  const pooled = new Map([...fixedDurations].map(([name, runs]) => [name, pooledPercentiles(runs)]));
  const baselinePooledP99 = pooled.get(BASELINE)!.p99;
  const baselinePooledP999 = pooled.get(BASELINE)!.p999;
  const fixed = new Map<string, ScenarioResult["fixedLoad"]>();
  for (const [name, runs] of fixedRuns) {
    const median = medianByP99(name);
    // The slowest Check of each run, from its log: h2load's own max is rounded to its display unit.
    const durations = fixedDurations.get(name)!;
    const rounds = runs.map(({ p50, p99, p999 }, i) => ({ p50, p99, p999, maxMs: durations[i]!.at(-1)! }));
    const p99XBaseline = median.p99 !== undefined && baselineP99 ? median.p99 / baselineP99 : undefined;
    const all = pooled.get(name)!;
    fixed.set(name, {
      ...median,
      rounds,
      ...(p99XBaseline === undefined ? {} : { p99XBaseline }),
      pooled: {
        ...all,
        p99XBaseline: all.p99 / baselinePooledP99,
        p999XBaseline: all.p999 / baselinePooledP999,
        maxMs: Math.max(...rounds.map((r) => r.maxMs)),
      },
      ...optional(fixedErrors.get(name)),
    });
  }

  const results: ScenarioResult[] = [];
  for (const { scenario, server, request, target, probe } of running) {
    const rss = server.pid === undefined ? undefined : await rssGrowth(target, server.pid, options);
    if (rss) {
      const mib = (v: number): string => v.toFixed(1);
      console.log(
        `rss ${scenario.name}: ${mib(rss.before.rssMiB)} → ${mib(rss.after.rssMiB)} MiB (${rss.rssGrowthPct}%), ` +
          `HWM ${mib(rss.before.hwmMiB)} → ${mib(rss.after.hwmMiB)} MiB (${rss.hwmGrowthPct}%)`,
      );
    }
    const name = scenario.name;
    const fastest = best(name);
    const leanest = leastCpu(name);
    results.push({
      name,
      description: scenario.description,
      requestBytes: request.length,
      probe: probe!,
      throughput: {
        best: fastest,
        rounds: rounds.get(name)!,
        xBaseline: fastest.rps / capacity,
        roundXBaseline: roundRatios(name),
        medianRoundXBaseline: median(roundRatios(name)),
        cpuUsPerCheck: leanest.cpuUsPerCheck,
        helperCpuUsPerCheck: leanest.helperCpuUsPerCheck,
        cpuXBaseline: baselineCpu / leanest.cpuUsPerCheck,
      },
      idle: idles.get(name)!,
      fixedLoad: fixed.get(name)!,
      ...(rss ? { rss } : {}),
    });
  }
  return results;
}

/** Checks the server answered without a decision since it reported `before`; undefined if it does not report them. */
async function errorsSince(server: StartedServer, before: number | undefined): Promise<number | undefined> {
  return before === undefined || !server.errorVerdicts ? undefined : (await server.errorVerdicts()) - before;
}

const optional = (errorVerdicts: number | undefined): { errorVerdicts?: number } =>
  errorVerdicts === undefined ? {} : { errorVerdicts };

function notes(): string[] {
  return [
    "h2load counts any HTTP 200 as success whatever the grpc-status trailer says; each scenario was probed " +
      "once over node:http2 before load (grpc-status and CheckResponse.status.code checked).",
    "h2load --rps fires a 10 ms timer and sends each client's due requests as one batch (rps/100 per client " +
      "per tick), so fixed-load latencies include queueing behind those batches; compare them across " +
      "scenarios, and read the idle figures for per-request service time.",
    "h2load runs on the same machine as the servers, and the machine may be shared: 'other CPU' is the " +
      "share of all CPUs busy with work not charged to the bench's processes during that round (a few % is " +
      "kernel networking; more means another tenant competed and the round's req/s is understated).",
    "RSS includes the tsx module-hooks worker thread (about 50 MiB), as in production (`node --import tsx`).",
    "×baseline and the fixed-load rate use the baseline measured in this same run. '×baseline' is the best round " +
      "over the baseline's best round; 'round ×baseline' is the median, over rounds, of a round's req/s over the " +
      "baseline's req/s in that same round, which cancels most of the machine's drift between rounds.",
    "CPU µs/check is the server process's user+system time (all threads, GC included) over a throughput round " +
      "divided by its checks, the least of the rounds; 'CPU ×baseline' is the baseline's figure over the " +
      "scenario's (above 1 means less work per check than the baseline). It is steadier than req/s when another " +
      "tenant competes, but it moves with the machine's own speed too (up to a quarter between rounds here). " +
      "km-limited's Redis work is shown apart, as '+N Redis'.",
  ];
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
  // Measured before any server starts: CPU used by anything else on the box competes with the bench.
  const busyBeforePct = await machineBusyPct();
  console.log(`machine busy before the run: ${busyBeforePct}% of ${os.cpus().length} CPUs`);
  if (busyBeforePct > 10) console.warn("warning: the machine is busy; figures will be noisy and low");
  const tmp = mkdtempSync(join(os.tmpdir(), "keymesh-bench-"));
  // On Ctrl-C the signal handler exits without unwinding to `finally`; exit hooks still run.
  process.once("exit", () => rmSync(tmp, { recursive: true, force: true }));
  const running: Running[] = [];
  try {
    // All servers run side by side so rounds can interleave; an idle Node server costs no CPU.
    for (const scenario of selected) {
      const server = await scenario.start();
      const request = server.request ?? scenario.request ?? new Uint8Array();
      const target = { port: server.port, dataFile: join(tmp, `${scenario.name}.bin`) };
      const r: Running = { scenario, server, request, target };
      running.push(r); // before any check, so a failing server is still stopped in `finally`
      if (request.length === 0)
        throw new Error(`${scenario.name}: no request (set Scenario.request or return one from start())`);
      writeFileSync(target.dataFile, grpcFrame(request));
      r.probe = await assertCheck(server.port, request, scenario.expectedCheckCode ?? 0);
      console.log(
        `${scenario.name}: listening on ${server.port} (pid ${server.pid ?? "in-process"}), probe ok`,
      );
    }
    const results = await measure(running, options);
    const cpus = os.cpus();
    const report: BenchResults = {
      date: new Date().toISOString(),
      quick: options.quick,
      machine: {
        cpus: cpus.length,
        cpuModel: cpus[0]?.model ?? "unknown",
        totalMemMiB: Math.round(os.totalmem() / 2 ** 20),
        platform: os.platform(),
        busyBeforePct,
        release: os.release(),
      },
      node: process.version,
      h2load: version,
      method:
        `best of ${options.rounds} interleaved rounds (each starting one scenario later) of ` +
        `${options.measuredRequests} requests ` +
        `(h2load -c ${options.clients} -m ${options.streams} -t 1)`,
      options,
      notes: notes(),
      scenarios: results,
      goals: checkGoals(results),
    };
    const paths = writeReports(RESULTS_DIR, report);
    console.log(`wrote ${paths.json} and ${paths.md}`);
  } finally {
    await Promise.all(running.map((r) => r.server.stop()));
    await terminateAll();
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exitCode = 1;
});
