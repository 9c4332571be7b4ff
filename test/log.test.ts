import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createLogger } from "../src/log.js";

describe("logging", () => {
  it("never writes a field that may hold a secret", () => {
    const lines: string[] = [];
    const logger = createLogger("debug", (line) => lines.push(line));
    logger.info("created", {
      secret: "trpt_x_abc",
      authorization: "Bearer abc",
      keyId: "key_1",
      pepper: "p",
    });
    const entry = JSON.parse(lines[0]!);
    expect(entry).toMatchObject({
      message: "created",
      keyId: "key_1",
      secret: "[redacted]",
      authorization: "[redacted]",
    });
    expect(lines[0]).not.toContain("abc");
  });

  it("drops events below the configured level", () => {
    const lines: string[] = [];
    createLogger("warn", (line) => lines.push(line)).info("quiet");
    expect(lines).toEqual([]);
  });
});

describe("log lines", () => {
  it("carry an ISO time and the level by name, and an error's kind, message and stack", () => {
    const lines: string[] = [];
    const error = Object.assign(new TypeError("the pool is closed"), {
      code: "CONNECTION_ENDED",
      query: "x",
    });
    createLogger("info", (line) => lines.push(line)).error("query failed", { error, step: "lookup" });
    const entry = JSON.parse(lines[0]!);
    expect(entry.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    expect(entry).toMatchObject({ level: "error", message: "query failed", step: "lookup" });
    expect(entry.error).toMatchObject({
      type: "TypeError",
      message: "the pool is closed",
      code: "CONNECTION_ENDED",
    });
    expect(entry.error.stack).toContain("log.test.ts");
    // Properties a library hangs on an error (postgres.js: the query and its parameters) are not written.
    expect(entry.error.query).toBeUndefined();
  });

  it("reach stderr in full when the process exits right after flushing", () => {
    // A burst larger than the asynchronous destination writes in one go, then an exit as main.ts does it.
    const script = `
      import { createLogger } from ${JSON.stringify(fileURLToPath(new URL("../src/log.ts", import.meta.url)))};
      const logger = createLogger("info");
      for (let i = 0; i < 5000; i++) logger.info("burst", { i, pad: "x".repeat(100) });
      await logger.flush();
      process.exit(0);
    `;
    const child = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(child.status).toBe(0);
    const lines = child.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines).toHaveLength(5000);
    expect(lines.at(-1)).toMatchObject({ message: "burst", i: 4999 });
  });
});
