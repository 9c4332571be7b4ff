/** Result shapes and the writers for bench/results/latest.json and latest.md. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { goalsTable, type ScenarioGoals } from "./goals.js";
import type { H2loadResult } from "./h2load.js";
import { median, type RssGrowth, round } from "./measure.js";
import type { BenchOptions } from "./options.js";
import type { ProbeResult } from "./probe.js";

/** One measured throughput run, the CPU time it cost, and how much unrelated CPU load it competed with. */
export type Round = H2loadResult & {
  otherCpuPct: number;
  /** The server's CPU time (all threads) per check, in µs. */
  cpuUsPerCheck: number;
  /** Its helpers' (redis-server's) CPU time per check, in µs; 0 without helpers. */
  helperCpuUsPerCheck: number;
  /** Checks of this round answered without a decision; absent for servers that always decide. */
  errorVerdicts?: number;
};

/** Everything measured for one scenario. */
export interface ScenarioResult {
  name: string;
  description: string;
  /** Encoded CheckRequest size (the gRPC frame adds 5 bytes). */
  requestBytes: number;
  probe: ProbeResult;
  throughput: {
    best: Round;
    rounds: Round[];
    xBaseline: number;
    /** Each round's req/s over the baseline's req/s in the same round, in round order. */
    roundXBaseline: number[];
    /** The median of roundXBaseline: the ratio least moved by drift in machine speed between rounds. */
    medianRoundXBaseline: number;
    /** The least server CPU per check over the rounds (the least disturbed), and the baseline's over it. */
    cpuUsPerCheck: number;
    helperCpuUsPerCheck: number;
    cpuXBaseline: number;
  };
  /** One request at a time (-c 1 -m 1): the latency floor. */
  idle: H2loadResult;
  /** The fixed-load run with the median p99, and every run. */
  fixedLoad: H2loadResult & {
    offeredRps: number;
    /** Each run's percentiles and its slowest Check. */
    rounds: { p50?: number; p99?: number; p999?: number; maxMs: number }[];
    /** This p99 over the baseline's; absent when either has none. */
    p99XBaseline?: number;
    /**
     * Percentiles over the requests of every run together, p99 and p99.9 over the baseline's pooled ones, and the
     * slowest Check of any run.
     */
    pooled: {
      p50: number;
      p99: number;
      p999: number;
      p99XBaseline: number;
      p999XBaseline: number;
      maxMs: number;
    };
    /** Checks answered without a decision over every fixed-load run; absent for servers that always decide. */
    errorVerdicts?: number;
  };
  /** Absent when the scenario's server has no pid of its own. */
  rss?: RssGrowth;
}

/** The whole run, as written to latest.json. */
export interface BenchResults {
  date: string;
  quick: boolean;
  machine: {
    cpus: number;
    cpuModel: string;
    totalMemMiB: number;
    platform: string;
    /** Share of all CPUs busy with other work just before the run (machineBusyPct in measure.ts). */
    busyBeforePct: number;
    release: string;
  };
  node: string;
  h2load: string;
  /** How throughput figures were chosen, in words. */
  method: string;
  options: BenchOptions;
  notes: string[];
  scenarios: ScenarioResult[];
  /** The Node 24 performance goals, per keymesh scenario (goals.ts). */
  goals: ScenarioGoals[];
}

const ms = (v: number | undefined): string => (v === undefined ? "n/a" : v.toFixed(2));
const int = (v: number): string => Math.round(v).toLocaleString("en-US");

/** Renders the markdown summary: throughput, fixed-load latency and RSS tables. */
export function toMarkdown(r: BenchResults): string {
  const lines = [
    `# keymesh bench${r.quick ? " (BENCH_QUICK smoke run: figures not meaningful)" : ""}`,
    "",
    `${r.date} · ${r.machine.cpus} × ${r.machine.cpuModel} · Node ${r.node} · ${r.h2load} · ` +
      `machine ${r.machine.busyBeforePct}% busy before the run`,
    "",
    ...goalsTable(r.goals),
    `Throughput: ${r.method}. Latencies in ms; throughput-run latencies include queueing at saturation.`,
    "",
    "| scenario | req/s | ×baseline | round ×baseline (median) | CPU µs/check | CPU ×baseline | p50 ms | p99 ms | other CPU |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ...r.scenarios.map((s) => {
      const t = s.throughput;
      const b = t.best;
      const helper = t.helperCpuUsPerCheck > 0 ? ` (+${t.helperCpuUsPerCheck.toFixed(1)} Redis)` : "";
      return (
        `| ${s.name} | ${int(b.rps)} | ${t.xBaseline.toFixed(2)} | ${t.medianRoundXBaseline.toFixed(2)} ` +
        `| ${t.cpuUsPerCheck.toFixed(1)}${helper} ` +
        `| ${t.cpuXBaseline.toFixed(2)} | ${ms(b.p50)} | ${ms(b.p99)} | ${b.otherCpuPct}% |`
      );
    }),
    ...referenceTable(r.scenarios),
    "",
    `Latency: idle = one request at a time (${int(r.options.idleRequests)} requests, -c 1 -m 1); fixed load = ` +
      `${int(r.scenarios[0]?.fixedLoad.offeredRps ?? 0)} req/s offered to every scenario ` +
      `(${r.options.latencyLoadFraction * 100}% of the baseline's capacity, h2load --rps) for ` +
      `${r.options.latencySeconds} s, ${r.options.latencyRounds} interleaved run(s) each. "All runs" gives ` +
      "percentiles over the requests of every run together, and its p99 over the baseline's: one run's p99 is set " +
      'by its few worst stalls, so pooling estimates the load\'s p99 best. "Median run" is the run with the ' +
      "median p99 (req/s is that run's), as earlier runs reported.",
    "",
    "| scenario | idle p50 ms | idle p99 ms | fixed-load req/s | all runs: p50 ms | p99 ms | p99 ×baseline | p99.9 ms | max ms | median run: p99 ms | p99 ×baseline | p99 / max of each run |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ...r.scenarios.map((s) => {
      const f = s.fixedLoad;
      const x = f.p99XBaseline === undefined ? "n/a" : f.p99XBaseline.toFixed(2);
      const each = f.rounds.map((x) => `${ms(x.p99)}/${ms(x.maxMs)}`).join(" · ");
      const all = f.pooled;
      return (
        `| ${s.name} | ${ms(s.idle.p50)} | ${ms(s.idle.p99)} | ${int(f.rps)} | ${ms(all.p50)} | ${ms(all.p99)} ` +
        `| ${all.p99XBaseline.toFixed(2)} | ${ms(all.p999)} | ${ms(all.maxMs)} | ${ms(f.p99)} | ${x} | ${each} |`
      );
    }),
    "",
    `Memory: server VmRSS / VmHWM (MiB) before and after ${int(r.options.rssChecks)} further checks, sent in ` +
      `chunks of ${int(r.options.rssChunk)}; "after 1st chunk" is VmRSS growth from the end of the first ` +
      "chunk (GC may shrink the heap while idle, which inflates the plain growth figure). VmRSS per chunk is " +
      "in latest.json (`rss.trendMiB`): a plateau means no leak.",
    "",
    "| scenario | RSS before | RSS after | RSS growth | after 1st chunk | HWM before | HWM after | HWM growth |",
    "|---|---:|---:|---:|---:|---:|---:|---:|",
    ...r.scenarios.map((s) => {
      const m = s.rss;
      if (!m) return `| ${s.name} | n/a | n/a | n/a | n/a | n/a | n/a | n/a |`;
      return (
        `| ${s.name} | ${m.before.rssMiB.toFixed(1)} | ${m.after.rssMiB.toFixed(1)} | ${m.rssGrowthPct}% ` +
        `| ${m.steadyRssGrowthPct}% ` +
        `| ${m.before.hwmMiB.toFixed(1)} | ${m.after.hwmMiB.toFixed(1)} | ${m.hwmGrowthPct}% |`
      );
    }),
    "",
    errorVerdictLine(r.scenarios),
    "",
    ...r.notes.map((n) => `- ${n}`),
    "",
  ];
  return lines.join("\n");
}

/**
 * With a reference checkout (`ref-…` scenarios), each scenario beside its twin: the median over rounds of this
 * tree's round ratio over the reference's in the same round, which cancels the machine's drift between rounds.
 */
function referenceTable(scenarios: ScenarioResult[]): string[] {
  const pairs = scenarios.flatMap((s) => {
    const ref = scenarios.find((r) => r.name === `ref-${s.name}`);
    return ref ? [{ s, ref }] : [];
  });
  if (pairs.length === 0) return [];
  return [
    "",
    "Against the reference checkout (`ref-…`, BENCH_REFERENCE_DIR): the median over rounds of this tree's req/s " +
      "over the reference's in the same round, and the two pooled fixed-load p99s over each other.",
    "",
    "| scenario | round ×baseline | ref round ×baseline | round ×reference (median) | pooled p99 ×reference |",
    "|---|---:|---:|---:|---:|",
    ...pairs.map(({ s, ref }) => {
      const perRound = s.throughput.rounds.map(
        (round, i) => round.rps / (ref.throughput.rounds[i]?.rps ?? NaN),
      );
      const p99 = s.fixedLoad.pooled.p99 / ref.fixedLoad.pooled.p99;
      return (
        `| ${s.name} | ${s.throughput.medianRoundXBaseline.toFixed(2)} | ` +
        `${ref.throughput.medianRoundXBaseline.toFixed(2)} | ${median(perRound).toFixed(3)} | ${p99.toFixed(2)} |`
      );
    }),
  ];
}

/** Checks answered without a decision, per scenario that reports them, in the throughput and fixed-load runs. */
function errorVerdictLine(scenarios: ScenarioResult[]): string {
  const counted = scenarios.filter((s) => s.fixedLoad.errorVerdicts !== undefined);
  if (counted.length === 0) return "No scenario reports Checks answered without a decision.";
  const each = counted.map((s) => {
    const throughput = s.throughput.rounds.reduce((sum, round) => sum + (round.errorVerdicts ?? 0), 0);
    return `${s.name} ${throughput} / ${s.fixedLoad.errorVerdicts}`;
  });
  return (
    "Checks answered without a decision (deadline passed or backend failed; keymesh's " +
    '`keymesh_check_decisions_total{decision="error"}`), in the throughput rounds / the fixed-load runs: ' +
    `${each.join(", ")}. h2load counts them as successes.`
  );
}

/** Writes latest.json and latest.md into `dir`; returns their paths. */
export function writeReports(dir: string, results: BenchResults): { json: string; md: string } {
  mkdirSync(dir, { recursive: true });
  const json = join(dir, "latest.json");
  const md = join(dir, "latest.md");
  const rounded = JSON.stringify(
    results,
    (_k, v) => (typeof v === "number" && !Number.isInteger(v) ? round(v, 3) : v),
    2,
  );
  writeFileSync(json, `${rounded}\n`);
  writeFileSync(md, toMarkdown(results));
  return { json, md };
}
