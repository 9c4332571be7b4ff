import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

/**
 * Two projects (see test/README.md): `unit` needs no backend and runs in seconds; `integration` (files named
 * `*.int.test.ts`) gets the real Postgres and Redis the global setup starts, so its files run in forks, few at a time.
 */
export default defineConfig({
  test: {
    // Forks rather than threads: tests spawn servers and child processes and rely on process-level cleanup.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 120_000,
    teardownTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: "unit",
          include: ["test/**/*.test.ts"],
          exclude: ["test/**/*.int.test.ts"],
          // Runs before the integration project, so a broken unit fails fast.
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: "integration",
          include: ["test/**/*.int.test.ts"],
          globalSetup: ["test/global-setup.ts"],
          sequence: { groupOrder: 1 },
          // Each file starts servers that share the one Postgres and Redis; more than two at once only thrashes a
          // 2-core CI box.
          maxWorkers: Math.max(1, Math.min(2, availableParallelism())),
        },
      },
    ],
  },
});
