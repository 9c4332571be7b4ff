/**
 * Preloaded into a bench server by `bench/promoted.ts` (`node --import bench/promoted-sampler.mjs …`). The first
 * SIGUSR2 starts V8's sampling heap profiler, keeping only allocations that outlived a young-generation collection
 * (collected by a full GC, or still alive); the second stops it and writes the profile to
 * `<tmpdir>/keymesh-promoted-<pid>.json`. Plain JavaScript: it loads before tsx is registered.
 */
import { renameSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import os from "node:os";
import { join } from "node:path";

const session = new Session();
session.connect();
let sampling = false;

process.on("SIGUSR2", () => {
  if (!sampling) {
    sampling = true;
    session.post("HeapProfiler.enable", () =>
      session.post("HeapProfiler.startSampling", {
        samplingInterval: 4096,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: false,
      }),
    );
    return;
  }
  sampling = false;
  session.post("HeapProfiler.stopSampling", (error, result) => {
    const path = join(os.tmpdir(), `keymesh-promoted-${process.pid}.json`);
    const body = error ? { error: String(error.message ?? error) } : result.profile;
    // Written whole, then renamed: the reader polls for the file and must never see half of it.
    writeFileSync(`${path}.partial`, JSON.stringify(body));
    renameSync(`${path}.partial`, path);
  });
});
