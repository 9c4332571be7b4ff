/**
 * Preloaded into a bench server by `bench/pretenuring.ts` (`node --import bench/gc-sampler.mjs …`). The first SIGUSR2
 * starts V8's GC profiler (node:v8 GCProfiler); the second stops it and writes every collection it saw (kind, pause,
 * old-generation size before and after) to `<tmpdir>/keymesh-gc-<pid>.json`. Plain JavaScript: it loads before tsx.
 */
import { renameSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { GCProfiler } from "node:v8";

const OLD_SPACES = new Set(["old_space", "large_object_space"]);
const oldBytes = (spaces) =>
  spaces.filter((s) => OLD_SPACES.has(s.spaceName)).reduce((sum, s) => sum + s.spaceUsedSize, 0);

let profiler;
process.on("SIGUSR2", () => {
  if (!profiler) {
    profiler = new GCProfiler();
    profiler.start();
    return;
  }
  const { statistics } = profiler.stop();
  profiler = undefined;
  const collections = statistics.map((s) => ({
    type: s.gcType,
    costUs: s.cost,
    oldBefore: oldBytes(s.beforeGC.heapSpaceStatistics),
    oldAfter: oldBytes(s.afterGC.heapSpaceStatistics),
  }));
  const path = join(os.tmpdir(), `keymesh-gc-${process.pid}.json`);
  // Written whole, then renamed: the reader polls for the file and must never see half of it.
  writeFileSync(`${path}.partial`, JSON.stringify(collections));
  renameSync(`${path}.partial`, path);
});
