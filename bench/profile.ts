/**
 * CPU profiling of a bench server:
 * `npx tsx bench/profile.ts [baseline|ceiling|grpc-noop|h2-noop|km-…|path/to/server.ts]`
 * (a `km-…` scenario name profiles keymesh itself, with its own redis-server and embedded Postgres).
 * Starts the server as `node --cpu-prof --cpu-prof-dir <dir> --import tsx <script>`, drives warm-up plus one
 * measured h2load run, stops it with SIGTERM (the server must leave through process.exit so V8 writes the
 * profile), then prints the top self-time frames and self time per package, counting only the samples taken
 * during the measured run so start-up and module loading do not pollute the figures.
 * Open the .cpuprofile in Chrome DevTools (Performance → Load profile) for flame charts.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { isAbsolute, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { installCleanupHandlers, REPO_ROOT, type StartedServer, spawnServer, terminateAll } from "./child.js";
import { buildCheckRequest, grpcFrame } from "./fixtures.js";
import { H2LOAD_INSTALL, h2loadVersion } from "./h2load.js";
import { type BenchKeys, KEY_SPACE, startBench } from "./keymesh.js";
import { throughput, warmUp } from "./measure.js";
import { benchOptions } from "./options.js";
import { assertCheck } from "./probe.js";
import { REFERENCE_REQUEST } from "./scenarios.js";

/** One function's share of the CPU samples. */
export interface Frame {
  functionName: string;
  /** Repo-relative path or node: id with a 1-based line; empty for V8 pseudo-frames such as (garbage collector). */
  location: string;
  selfMs: number;
  selfPct: number;
}

/** Milliseconds since the profiled process started; only samples inside the window are counted. */
export interface Window {
  fromMs: number;
  toMs: number;
}

/** A V8 call frame, as CPU and heap profiles give it. */
export interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface CpuProfile {
  nodes: { id: number; callFrame: CallFrame }[];
  samples: number[];
  timeDeltas: number[];
}

function shortUrl(url: string): string {
  // CPU profiles name files by URL; heap profiles name CommonJS files by absolute path.
  if (url.startsWith("file://")) return relative(REPO_ROOT, fileURLToPath(url));
  return isAbsolute(url) ? relative(REPO_ROOT, url) : url;
}

/** Self time (µs) per call frame: each sample is charged the gap to the next one. */
function selfTimes(profilePath: string, window?: Window): { frames: [CallFrame, number][]; total: number } {
  const profile = JSON.parse(readFileSync(profilePath, "utf8")) as CpuProfile;
  const byId = new Map<number, number>();
  let total = 0;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    if (window && (at < window.fromMs * 1000 || at > window.toMs * 1000)) continue;
    const id = profile.samples[i]!;
    byId.set(id, (byId.get(id) ?? 0) + dt);
    total += dt;
  }
  const frames = profile.nodes.flatMap((n): [CallFrame, number][] => {
    const self = byId.get(n.id);
    return self ? [[n.callFrame, self]] : [];
  });
  return { frames, total };
}

/** The `n` functions with the most self time in a .cpuprofile, merged across call sites. */
export function topFrames(profilePath: string, n = 15, window?: Window): Frame[] {
  const { frames, total } = selfTimes(profilePath, window);
  const merged = new Map<string, Frame>();
  for (const [{ functionName, url, lineNumber }, self] of frames) {
    const location = url ? `${shortUrl(url)}:${lineNumber + 1}` : "";
    const key = `${functionName}\u0000${location}`;
    const frame = merged.get(key) ?? {
      functionName: functionName || "(anonymous)",
      location,
      selfMs: 0,
      selfPct: 0,
    };
    frame.selfMs += self / 1000;
    frame.selfPct += (self / total) * 100;
    merged.set(key, frame);
  }
  return [...merged.values()].sort((a, b) => b.selfMs - a.selfMs).slice(0, n);
}

/** Self time grouped by npm package, node: module family or V8 pseudo-frame, in percent. */
export function timeByPackage(profilePath: string, window?: Window): { bucket: string; pct: number }[] {
  const { frames, total } = selfTimes(profilePath, window);
  const buckets = new Map<string, number>();
  for (const [frame, self] of frames) {
    const bucket = packageOf(frame);
    buckets.set(bucket, (buckets.get(bucket) ?? 0) + (self / total) * 100);
  }
  return [...buckets].map(([bucket, pct]) => ({ bucket, pct })).sort((a, b) => b.pct - a.pct);
}

/** Where a frame belongs: its npm package, its node: module family, its repo file, or its V8 pseudo-frame name. */
export function packageOf({ functionName, url }: CallFrame): string {
  const path = shortUrl(url);
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path)?.[1];
  const family = path.startsWith("node:") ? path.split("/").slice(0, 2).join("/") : path;
  return pkg ?? (family || `${functionName || "(native)"}`);
}

/** A frame as `name  path:line`, paths relative to the repo. */
export function frameLabel({ functionName, url, lineNumber }: CallFrame): string {
  return `${functionName || "(anonymous)"}  ${url ? `${shortUrl(url)}:${lineNumber + 1}` : ""}`.trimEnd();
}

/**
 * Picks the main thread's profile: with `--import tsx` Node also runs a module-hooks worker thread, which
 * --cpu-prof profiles too (CPU.<date>.<time>.<pid>.<threadId>.<seq>.cpuprofile; the main thread is id 0).
 */
function mainThreadProfile(dir: string, pid: number | undefined): string {
  const files = readdirSync(dir).filter((f) => f.endsWith(".cpuprofile"));
  const main = files.find((f) => f.includes(`.${pid}.0.`)) ?? files.sort().at(-1);
  if (!main) throw new Error(`no .cpuprofile written in ${dir}`);
  return join(dir, main);
}

/** A server started with the given node flags, plus the request to drive it with. */
export type Starter = (nodeArgs: string[]) => Promise<StartedServer & { request: Uint8Array }>;

/** What one profiled run measured: its window in the server's own clock, its rate and the server's pid. */
export interface LoadRun {
  window: Window;
  rps: number;
  pid: number | undefined;
}

/**
 * Starts a server with `nodeArgs`, checks its answer, warms it up and drives one measured h2load run, calling
 * `around.begin` just before and `around.end` just after it (while the server still runs), then stops it. The
 * measured run sends `measuredRequests` (default: the bench's).
 */
export async function runUnderLoad(
  start: Starter,
  nodeArgs: string[],
  expectedCheckCode = 0,
  around: { begin?(pid: number | undefined): void; end?(pid: number | undefined): Promise<void> } = {},
  measuredRequests?: number,
): Promise<LoadRun> {
  const defaults = benchOptions();
  const options = { ...defaults, measuredRequests: measuredRequests ?? defaults.measuredRequests };
  // The profile clock starts with the process; spawn time is close enough (ms) to place a multi-second run.
  const spawnedAt = performance.now();
  const server = await start(nodeArgs);
  const tmp = mkdtempSync(join(os.tmpdir(), "keymesh-profile-"));
  try {
    const dataFile = join(tmp, "request.bin");
    writeFileSync(dataFile, grpcFrame(server.request));
    await assertCheck(server.port, server.request, expectedCheckCode);
    const target = { port: server.port, dataFile };
    await warmUp(target, options);
    around.begin?.(server.pid);
    const fromMs = performance.now() - spawnedAt;
    const { rps } = await throughput(target, options, join(REPO_ROOT, "bench", "results", "profile.log"));
    const window = { fromMs, toMs: performance.now() - spawnedAt };
    await around.end?.(server.pid);
    return { window, rps, pid: server.pid };
  } finally {
    await server.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Starts a bench server script (it prints LISTENING <port>) with the given node flags. */
function serverStarter(script: string, request: Uint8Array = REFERENCE_REQUEST): Starter {
  return async (nodeArgs) => ({ ...(await spawnServer(script, { nodeArgs, graceMs: 15_000 })), request });
}

/** Profiles whatever `start` launches (it must pass the given node flags to the server process). */
export async function profileStarted(
  label: string,
  start: Starter,
  expectedCheckCode = 0,
): Promise<{ path: string; window: Window; rps: number }> {
  // A fresh directory per run, so the main-thread profile is found by pid without guessing among old files.
  const dir = join(REPO_ROOT, "bench", "results", "profiles", `${label}-${Date.now()}`);
  const run = await runUnderLoad(start, ["--cpu-prof", "--cpu-prof-dir", dir], expectedCheckCode);
  return { path: mainThreadProfile(dir, run.pid), window: run.window, rps: run.rps };
}

/** Starts the keymesh bench setup under the profiler and picks the key of keymesh scenario `name`. */
function keymeshStarter(name: string): { start: Starter; code: number } | undefined {
  const pick: Record<string, [(k: BenchKeys) => string, number]> = {
    "km-limited": [(k) => k.limited, 0],
    "km-unlimited": [(k) => k.unlimited, 0],
    "km-malformed": [(k) => k.malformed, 16],
    "km-unknown": [(k) => k.unknown, 16],
    "km-revoked": [(k) => k.revoked, 16],
  };
  const chosen = pick[name];
  if (!chosen) return undefined;
  const start: Starter = async (nodeArgs) => {
    const keys = await startBench(nodeArgs);
    const key = chosen[0](keys);
    return {
      port: keys.server.grpcPort,
      pid: keys.server.pid,
      request: buildCheckRequest({ authorization: `Bearer ${key}`, keySpace: KEY_SPACE }),
      stop: keys.stop,
    };
  };
  return { start, code: chosen[1] };
}

/** The bench's own servers, by the names the bench reports them under. */
const SERVERS: Record<string, string> = {
  baseline: "bench/baseline-server.ts",
  ceiling: "bench/ceiling-server.ts",
  "grpc-noop": "bench/grpc-noop-server.ts",
  "h2-noop": "bench/grpc-h2-noop-server.ts",
};

/**
 * For a command-line tool that drives one server: exits naming the apt package when h2load is missing, installs the
 * cleanup handlers, and resolves the server named by `which` (a `km-…` scenario, one of SERVERS, or a script path).
 */
export function cliTarget(which: string): { start: Starter; code: number } {
  if (!h2loadVersion()) {
    console.error(`h2load not found. Install it (Debian/Ubuntu, as root):\n  ${H2LOAD_INSTALL}`);
    process.exit(1);
  }
  installCleanupHandlers();
  return keymeshStarter(which) ?? { start: serverStarter(SERVERS[which] ?? which), code: 0 };
}

async function main(): Promise<void> {
  const which = process.argv[2] ?? "baseline";
  const { start, code } = cliTarget(which);
  const label = which.replace(/^.*\//, "").replace(/\.ts$/, "");
  const { path, window, rps } = await profileStarted(label, start, code).finally(terminateAll);
  const seconds = ((window.toMs - window.fromMs) / 1000).toFixed(1);
  console.log(`${which}: ${Math.round(rps)} req/s under the profiler (sampling slows the server)`);
  console.log(`profile: ${relative(REPO_ROOT, path)}; samples from the ${seconds} s measured run only\n`);
  console.log("top self-time frames:");
  for (const f of topFrames(path, 15, window)) {
    console.log(`${f.selfPct.toFixed(1).padStart(5)}%  ${f.functionName}  ${f.location}`);
  }
  console.log("\nself time by package:");
  for (const b of timeByPackage(path, window).slice(0, 12))
    console.log(`${b.pct.toFixed(1).padStart(5)}%  ${b.bucket}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
