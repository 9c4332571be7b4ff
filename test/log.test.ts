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
