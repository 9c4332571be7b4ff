/**
 * Bench knobs. The only place under bench/ that reads the environment, so the full run's figures stay
 * reproducible and a fast smoke mode is one switch (`BENCH_QUICK=1`).
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/** Load shape and counts for one `npm run bench` invocation. */
export interface BenchOptions {
  /** True when BENCH_QUICK=1: small counts for a smoke run, figures not meaningful. */
  quick: boolean;
  /** Requests sent per scenario before anything is measured (JIT, connection and pool warm-up). */
  warmupRequests: number;
  /** Requests per measured throughput run. */
  measuredRequests: number;
  /** Interleaved rounds over all scenarios; each scenario's best round, and its median ratio per round, are reported. */
  rounds: number;
  /** h2load connections (-c). */
  clients: number;
  /** h2load max concurrent streams per connection (-m). */
  streams: number;
  /** Requests of the one-at-a-time run (-c 1 -m 1) that measures service time without queueing. */
  idleRequests: number;
  /** Fixed-load run length, in seconds. */
  latencySeconds: number;
  /** Interleaved fixed-load runs per scenario; percentiles over all their requests, and the median run, are reported. */
  latencyRounds: number;
  /** Offered load for the fixed-load run, as a fraction of the baseline's measured capacity. */
  latencyLoadFraction: number;
  /** Checks sent between the two RSS readings. */
  rssChecks: number;
  /** Checks per h2load invocation during the RSS run (keeps each run short and observable). */
  rssChunk: number;
  /**
   * Another checkout of keymesh (BENCH_REFERENCE_DIR, with its own node_modules): its Check runs as `ref-…`
   * scenarios beside this tree's, so a change is compared with the code before it in the same rounds.
   */
  referenceDir: string | undefined;
}

/** Reads BENCH_QUICK once and returns the counts for a full or a smoke run. */
export function benchOptions(env: NodeJS.ProcessEnv = process.env): BenchOptions {
  const quick = env.BENCH_QUICK === "1";
  const referenceDir = env.BENCH_REFERENCE_DIR ? resolve(env.BENCH_REFERENCE_DIR) : undefined;
  if (referenceDir && !existsSync(join(referenceDir, "src", "main.ts"))) {
    throw new Error(`BENCH_REFERENCE_DIR=${referenceDir} is not a keymesh checkout (no src/main.ts)`);
  }
  // c=4, m=32: enough in flight to saturate a single-threaded Node server while h2load (-t 1) keeps one core.
  const shape = { clients: 4, streams: 32, latencyLoadFraction: 0.5, referenceDir };
  if (quick) {
    return {
      quick,
      ...shape,
      rounds: 2,
      warmupRequests: 2_000,
      measuredRequests: 20_000,
      idleRequests: 1_000,
      latencySeconds: 3,
      latencyRounds: 1,
      rssChecks: 40_000,
      rssChunk: 20_000,
    };
  }
  return {
    quick,
    ...shape,
    // Five short rounds rather than three long ones, in the same time: back-to-back runs of the same server differ
    // by up to ~25% on this box, and the per-round ratio to the baseline needs several rounds for its median.
    rounds: 5,
    warmupRequests: 20_000,
    measuredRequests: 120_000,
    idleRequests: 10_000,
    latencySeconds: 10,
    // p99 of one 10 s run is set by its few worst stalls (a GC pause, a noisy neighbour) and moves by up to 3×
    // between runs of one server here; the report pools every run's requests.
    latencyRounds: 5,
    rssChecks: 1_000_000,
    rssChunk: 250_000,
  };
}
