import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

describe("configuration", () => {
  it("runs on embedded defaults with nothing set", () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      databaseUrl: undefined,
      redisUrl: undefined,
      httpPort: 8080,
      grpcPort: 9090,
      failureMode: "deny",
    });
  });

  it("a bad value fails at boot with a message that names the setting", () => {
    expect(() => loadConfig({ KEYMESH_HTTP_PORT: "eighty" })).toThrow(/KEYMESH_HTTP_PORT/);
    expect(() => loadConfig({ KEYMESH_FAILURE_MODE: "maybe" })).toThrow(
      /KEYMESH_FAILURE_MODE must be one of deny, error/,
    );
    expect(() => loadConfig({ REDIS_URL: "http://x" })).toThrow(ConfigError);
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:1,b" })).toThrow(/REDIS_CLUSTER_NODES/);
  });

  it("refuses a Redis timeout that is not below the Check deadline, so no charge outlives its answer", () => {
    for (const [redis, deadline] of [
      ["150", "150"],
      ["200", "150"],
      ["100", "50"],
    ] as const) {
      expect(() =>
        loadConfig({ KEYMESH_REDIS_TIMEOUT_MS: redis, KEYMESH_CHECK_DEADLINE_MS: deadline }),
      ).toThrow(/KEYMESH_REDIS_TIMEOUT_MS must be below KEYMESH_CHECK_DEADLINE_MS/);
    }
    expect(loadConfig({ KEYMESH_REDIS_TIMEOUT_MS: "149" }).redisTimeoutMs).toBe(149);
  });

  it("an external database requires a pepper of at least 32 characters, and never echoes the URL", () => {
    expect(() => loadConfig({ DATABASE_URL: "postgres://u:hunter2@db/x" })).toThrow(
      /KEYMESH_PEPPER is required/,
    );
    expect(() => loadConfig({ DATABASE_URL: "postgres://u:p@db/x", KEYMESH_PEPPER: "short" })).toThrow(
      /at least 32/,
    );
    try {
      loadConfig({ DATABASE_URL: "not a url hunter2" });
    } catch (error) {
      expect(String(error)).toContain("DATABASE_URL");
      expect(String(error)).not.toContain("hunter2");
    }
  });

  it("bounds the database by default, and a migration URL needs the service's URL beside it", () => {
    expect(loadConfig({})).toMatchObject({
      databaseMigrationUrl: undefined,
      dbStatementTimeoutMs: 5000,
      dbLockTimeoutMs: 3000,
      dbConnectTimeoutMs: 5000,
      dbProbeTimeoutMs: 1000,
      adminDeadlineMs: 5000,
    });
    expect(() => loadConfig({ DATABASE_MIGRATION_URL: "postgres://owner:p@db/x" })).toThrow(
      /DATABASE_MIGRATION_URL needs DATABASE_URL/,
    );
    expect(() => loadConfig({ KEYMESH_ADMIN_DEADLINE_MS: "0" })).toThrow(/KEYMESH_ADMIN_DEADLINE_MS/);
  });
});
