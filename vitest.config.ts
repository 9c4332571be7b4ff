import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/** The suite's config: real Postgres and Redis come from the global setup, so files run in forks, few at a time. */
export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/global-setup.ts"],
    // Forks rather than threads: tests spawn servers and child processes and rely on process-level cleanup.
    pool: "forks",
    // Each file starts servers that share the one Postgres and Redis; more than two at once only thrashes a 2-core CI box.
    maxWorkers: Math.max(1, Math.min(2, availableParallelism())),
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
  },
});
