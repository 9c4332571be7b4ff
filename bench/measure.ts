/** The measurements run.ts makes per scenario: throughput, idle and fixed-load latency, RSS growth. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { type H2loadResult, runH2load } from "./h2load.js";
import type { BenchOptions } from "./options.js";

/** Where to send load: a started server and the file holding its framed request. */
export interface Target {
  port: number;
  dataFile: string;
}

/** Unmeasured load: JIT tiers, connection setup and any caches settle before figures are taken. */
export async function warmUp(target: Target, options: BenchOptions): Promise<void> {
  await runH2load({
    ...target,
    requests: options.warmupRequests,
    clients: options.clients,
    streams: options.streams,
  });
}

/** One closed-loop run at full concurrency: req/s is the capacity, latencies include queueing. */
export function throughput(target: Target, options: BenchOptions, logFile: string): Promise<H2loadResult> {
  return runH2load({
    ...target,
    requests: options.measuredRequests,
    clients: options.clients,
    streams: options.streams,
    logFile,
  });
}

/** One request at a time on one connection: service time plus loopback round trip, no queueing. */
export function idle(target: Target, options: BenchOptions, logFile: string): Promise<H2loadResult> {
  return runH2load({ ...target, requests: options.idleRequests, clients: 1, streams: 1, logFile });
}

/** A paced run at `totalRps` for options.latencySeconds; the figures that matter are the percentiles. */
export async function fixedLoad(
  target: Target,
  options: BenchOptions,
  totalRps: number,
  logFile: string,
): Promise<H2loadResult & { offeredRps: number }> {
  // --rps is per client and an integer, so the offered rate is rounded to a multiple of the client count.
  const rpsPerClient = Math.max(1, Math.round(totalRps / options.clients));
  const offeredRps = rpsPerClient * options.clients;
  const result = await runH2load({
    ...target,
    requests: offeredRps * options.latencySeconds,
    clients: options.clients,
    streams: options.streams,
    rpsPerClient,
    logFile,
  });
  return { ...result, offeredRps };
}

/** Resident-set figures from /proc/<pid>/status, in MiB. */
export interface RssSample {
  /** VmRSS: resident now. */
  rssMiB: number;
  /** VmHWM: the peak resident set since the process started. */
  hwmMiB: number;
}

/** Reads VmRSS and VmHWM of a live process (Linux only). */
export function readRss(pid: number): RssSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB$`, "m").exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]);
  };
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}

/** RSS before and after `options.rssChecks` checks, with a sample after every chunk to show the trend. */
export interface RssGrowth {
  checks: number;
  before: RssSample;
  after: RssSample;
  /** VmRSS after each chunk, in MiB: a steady climb suggests a leak, a plateau does not. */
  trendMiB: number[];
  rssGrowthPct: number;
  hwmGrowthPct: number;
  /**
   * VmRSS growth from the end of the first chunk to the end: the heap has re-grown to its working size by
   * then, so unlike rssGrowthPct this is not inflated by a GC having shrunk it during the previous idle spell.
   */
  steadyRssGrowthPct: number;
}

/** Drives options.rssChecks checks in chunks and reports how the server's resident set moved. */
export async function rssGrowth(target: Target, pid: number, options: BenchOptions): Promise<RssGrowth> {
  const before = readRss(pid);
  const trendMiB: number[] = [];
  let sent = 0;
  while (sent < options.rssChecks) {
    const requests = Math.min(options.rssChunk, options.rssChecks - sent);
    const run = await runH2load({ ...target, requests, clients: options.clients, streams: options.streams });
    if (run.succeeded !== requests) throw new Error(`RSS run: ${run.succeeded}/${requests} succeeded`);
    sent += requests;
    trendMiB.push(round(readRss(pid).rssMiB, 1));
  }
  const after = readRss(pid);
  const pct = (a: number, b: number): number => round(((b - a) / a) * 100, 1);
  return {
    checks: sent,
    before,
    after,
    trendMiB,
    rssGrowthPct: pct(before.rssMiB, after.rssMiB),
    hwmGrowthPct: pct(before.hwmMiB, after.hwmMiB),
    steadyRssGrowthPct: pct(trendMiB[0] ?? before.rssMiB, after.rssMiB),
  };
}

/** The middle value, or the mean of the two middle values of an even count. */
export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Rounds to `digits` decimals for reports. */
export function round(value: number, digits = 2): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

function cpuTicks(): { busy: number; total: number } {
  const fields = readFileSync("/proc/stat", "utf8")
    .split("\n")[0]!
    .trim()
    .split(/\s+/)
    .slice(1, 9)
    .map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  // idle + iowait are the only non-busy columns.
  return { busy: total - fields[3]! - fields[4]!, total };
}

/**
 * Share of all CPUs busy over `ms`, from /proc/stat, which counts the whole machine (other containers too):
 * taken while the bench itself is idle, it shows how much noise the figures are exposed to.
 */
export async function machineBusyPct(ms = 2000): Promise<number> {
  const a = cpuTicks();
  await new Promise((resolve) => setTimeout(resolve, ms));
  const b = cpuTicks();
  return round(((b.busy - a.busy) / Math.max(1, b.total - a.total)) * 100, 1);
}

const CLOCK_TICKS_PER_SECOND = (() => {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/**
 * Starts counting the CPU time (user + system, all threads) of `pids`; the returned function gives the
 * microseconds spent since, per each of `checks`. Unlike req/s, this hardly moves when another tenant takes CPU
 * time, so it tells whether a server does more or less work per check.
 */
export function watchCpuPerCheck(pids: number[]): (checks: number) => number {
  const ticks = (): number => pids.reduce((sum, p) => sum + processTicks(p), 0);
  const t0 = ticks();
  return (checks) => ((ticks() - t0) / CLOCK_TICKS_PER_SECOND / Math.max(1, checks)) * 1e6;
}

/** utime+stime of a process in clock ticks; for "self", plus the children it has reaped (h2load runs). */
function processTicks(pid: number | "self"): number {
  try {
    // Fields after the parenthesised command name; utime is field 14 of the full line, so index 11 here.
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat
      .slice(stat.lastIndexOf(")") + 2)
      .split(" ")
      .map(Number);
    return f[11]! + f[12]! + (pid === "self" ? f[13]! + f[14]! : 0);
  } catch {
    return 0; // the process has exited; its ticks can no longer be told apart
  }
}

/**
 * Starts watching CPU use by anything other than this process, its reaped children and `pids` (the
 * servers). The returned function gives that "other" share of the whole machine, in percent, since the
 * start. It includes kernel softirq time not charged to any process, so a few percent is normal noise;
 * tens of percent mean another tenant competed with the run.
 */
export function watchOtherCpu(pids: number[]): () => number {
  const ours = (): number => processTicks("self") + pids.reduce((sum, p) => sum + processTicks(p), 0);
  const m0 = cpuTicks();
  const o0 = ours();
  return () => {
    const m1 = cpuTicks();
    const other = m1.busy - m0.busy - (ours() - o0);
    return round(Math.max(0, (other / Math.max(1, m1.total - m0.total)) * 100), 1);
  };
}
