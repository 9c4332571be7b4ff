/** Unit test (no Postgres, no Redis): KEYMESH_WORKERS and KEYMESH_DB_POOL_MAX as loadConfig validates them. */
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const REDIS = { REDIS_URL: "redis://cache:6379" };
const CLUSTER = { REDIS_CLUSTER_NODES: "a:7000,b:7001" };

describe("KEYMESH_WORKERS", () => {
  it("defaults to the machine's available parallelism when rate limits live in Redis", () => {
    expect(loadConfig(REDIS, 8).workers).toBe(8);
    expect(loadConfig(CLUSTER, 3).workers).toBe(3);
  });

  it("defaults to one worker without Redis, whatever the machine offers", () => {
    expect(loadConfig({}, 32).workers).toBe(1);
  });

  it("takes an explicit count with Redis, and 1 without it", () => {
    expect(loadConfig({ ...REDIS, KEYMESH_WORKERS: "4" }, 2).workers).toBe(4);
    expect(loadConfig({ KEYMESH_WORKERS: "1" }, 2).workers).toBe(1);
  });

  it("refuses more than one worker without Redis, naming the setting and the cure", () => {
    for (const n of ["2", "16"]) {
      const attempt = () => loadConfig({ KEYMESH_WORKERS: n }, 2);
      expect(attempt).toThrow(ConfigError);
      expect(attempt).toThrow(`KEYMESH_WORKERS is ${n}, but without REDIS_URL`);
      expect(attempt).toThrow(/set REDIS_URL, or KEYMESH_WORKERS=1/);
    }
  });

  it("refuses zero, fractions, words and counts above 256", () => {
    for (const bad of ["0", "1.5", "auto", "-2", "257"]) {
      expect(() => loadConfig({ ...REDIS, KEYMESH_WORKERS: bad }, 2)).toThrow(/KEYMESH_WORKERS/);
    }
  });

  it("caps the default at 256 on very large machines", () => {
    expect(loadConfig(REDIS, 512).workers).toBe(256);
  });
});

describe("KEYMESH_DB_POOL_MAX", () => {
  it("defaults to 10 connections per worker and accepts 1 to 1000", () => {
    expect(loadConfig({}).dbPoolMax).toBe(10);
    expect(loadConfig({ KEYMESH_DB_POOL_MAX: "3" }).dbPoolMax).toBe(3);
    expect(() => loadConfig({ KEYMESH_DB_POOL_MAX: "0" })).toThrow(/KEYMESH_DB_POOL_MAX/);
    expect(() => loadConfig({ KEYMESH_DB_POOL_MAX: "1001" })).toThrow(/KEYMESH_DB_POOL_MAX/);
  });
});
