/**
 * h2load driver: runs one load test against a gRPC Check endpoint and returns throughput plus latency
 * percentiles. h2load's summary only has min/max/mean/sd, so percentiles come from its per-request
 * `--log-file` (nghttp2 1.52: tab-separated start µs since epoch, HTTP status (-1 = failed), duration µs).
 * It appends to an existing log file, so the file is removed before each run.
 * Caveats: h2load counts HTTP 200 as success whatever the grpc-status trailer says (probe.ts checks that);
 * and --rps paces with a timer of max(10 ms, 1/rps), so each client sends rps/100 requests per 10 ms tick as
 * one batch: at 12k req/s over 4 clients that is 120 requests every 10 ms, and fixed-load latencies include
 * the wait behind such a batch. Comparable across scenarios, but not the smooth arrival Envoy would produce.
 */
import { execFileSync, spawn } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { track } from "./child.js";

/** The command that installs h2load on Debian/Ubuntu. */
export const H2LOAD_INSTALL = "apt-get update && apt-get install -y nghttp2-client";

/** The Envoy ext_authz method every scenario is driven through. */
export const CHECK_PATH = "/envoy.service.auth.v3.Authorization/Check";

/** One h2load invocation. */
export interface H2loadOptions {
  port: number;
  /** File holding the gRPC-framed request body (sent with -d, which also makes h2load POST). */
  dataFile: string;
  /** Total requests across all clients (-n). */
  requests: number;
  clients: number;
  /** Max concurrent streams per connection (-m). */
  streams: number;
  /** Requests per second per client (h2load's --rps is per client: total = rps × clients). */
  rpsPerClient?: number;
  /** Per-request log; when set, p50/p99/p99.9 are computed from it. */
  logFile?: string;
}

/** What one run measured; latencies in milliseconds. */
export interface H2loadResult {
  rps: number;
  succeeded: number;
  failed: number;
  errored: number;
  /** Responses with a non-2xx HTTP status. */
  non2xx: number;
  elapsedMs: number;
  meanMs: number;
  maxMs: number;
  p50?: number;
  p99?: number;
  p999?: number;
}

/** Returns h2load's version line, or undefined when it is not installed. */
export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"], { encoding: "utf8" }).trim();
  } catch {
    return undefined;
  }
}

const UNIT_MS: Record<string, number> = { us: 1e-3, ms: 1, s: 1000 };

function toMs(value: string, unit: string): number {
  return Number(value) * (UNIT_MS[unit] ?? Number.NaN);
}

/** Parses h2load's summary ("finished in", "requests:", "status codes:", "time for request:"). */
export function parseH2loadOutput(stdout: string): Omit<H2loadResult, "p50" | "p99" | "p999"> {
  const finished = /finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/.exec(stdout);
  const requests =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(stdout);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  const time = /time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/.exec(stdout);
  if (!finished || !requests || !codes || !time) throw new Error(`unexpected h2load output:\n${stdout}`);
  return {
    elapsedMs: toMs(finished[1]!, finished[2]!),
    rps: Number(finished[3]),
    succeeded: Number(requests[1]),
    failed: Number(requests[2]),
    errored: Number(requests[3]),
    non2xx: Number(codes[2]) + Number(codes[3]) + Number(codes[4]),
    maxMs: toMs(time[3]!, time[4]!),
    meanMs: toMs(time[5]!, time[6]!),
  };
}

/** Latency percentiles (ms) from an h2load --log-file; rows with a status other than 200 are counted, not ranked. */
export function latencyFromLog(path: string): {
  count: number;
  non200: number;
  p50: number;
  p99: number;
  p999: number;
} {
  const { sorted, non200 } = durationsFromLog(path);
  return { count: sorted.length, non200, ...percentiles(sorted) };
}

/** The durations (ms, ascending) of an h2load --log-file's HTTP 200 rows, and the count of other rows. */
export function durationsFromLog(path: string): { sorted: Float64Array; non200: number } {
  const text = readFileSync(path, "utf8");
  const durations: number[] = [];
  let non200 = 0;
  let lineStart = 0;
  while (lineStart < text.length) {
    let lineEnd = text.indexOf("\n", lineStart);
    if (lineEnd < 0) lineEnd = text.length;
    const cols = text.slice(lineStart, lineEnd).split("\t");
    lineStart = lineEnd + 1;
    if (cols.length < 3) continue;
    if (cols[1] !== "200") non200++;
    else durations.push(Number(cols[2]) / 1000);
  }
  if (durations.length === 0) throw new Error(`${path}: no successful requests logged`);
  return { sorted: Float64Array.from(durations).sort(), non200 };
}

/** Percentiles over the durations of several runs (each ascending, as durationsFromLog gives them) taken together. */
export function pooledPercentiles(runs: readonly Float64Array[]): { p50: number; p99: number; p999: number } {
  const all = new Float64Array(runs.reduce((n, run) => n + run.length, 0));
  let at = 0;
  for (const run of runs) {
    all.set(run, at);
    at += run.length;
  }
  return percentiles(all.sort());
}

/** p50, p99 and p99.9 of ascending `sorted`, by nearest rank: the smallest sample with at least p at or below it. */
export function percentiles(sorted: Float64Array): { p50: number; p99: number; p999: number } {
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999) };
}

/** Runs h2load once (-t 1: it shares a 2-core box with the server) and parses its summary and log. */
export async function runH2load(options: H2loadOptions): Promise<H2loadResult> {
  const args = [
    ...[
      "-n",
      String(options.requests),
      "-c",
      String(options.clients),
      "-m",
      String(options.streams),
      "-t",
      "1",
    ],
    ...["-d", options.dataFile, "-H", "content-type: application/grpc", "-H", "te: trailers"],
    ...(options.rpsPerClient ? ["--rps", String(options.rpsPerClient)] : []),
    ...(options.logFile ? ["--log-file", options.logFile] : []),
    `http://127.0.0.1:${options.port}${CHECK_PATH}`,
  ];
  // h2load appends to an existing log file; a stale one would mix runs into the percentiles.
  if (options.logFile) rmSync(options.logFile, { force: true });
  const child = track(spawn("h2load", args, { stdio: ["ignore", "pipe", "pipe"] }));
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (c: string) => (stdout += c));
  child.stderr!.setEncoding("utf8").on("data", (c: string) => (stderr += c));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once("error", reject);
    child.once("close", resolve);
  });
  if (code !== 0) throw new Error(`h2load exited with ${code}: ${stderr || stdout}`);
  const summary = parseH2loadOutput(stdout);
  if (!options.logFile) return summary;
  const { p50, p99, p999 } = latencyFromLog(options.logFile);
  return { ...summary, p50, p99, p999 };
}
