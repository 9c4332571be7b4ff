import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
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

  it("leases rate limits for 100 ms by default, 0 turns leases off, and anything else is refused", () => {
    expect(loadConfig({}).rateLimitLeaseMs).toBe(100);
    expect(loadConfig({ KEYMESH_RATE_LIMIT_LEASE_MS: "0" }).rateLimitLeaseMs).toBe(0);
    for (const bad of ["-1", "10001", "0.5", "soon"])
      expect(() => loadConfig({ KEYMESH_RATE_LIMIT_LEASE_MS: bad })).toThrow(/KEYMESH_RATE_LIMIT_LEASE_MS/);
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

describe("secrets mounted as files (no Postgres, no Redis)", () => {
  const dir = mkdtempSync(join(tmpdir(), "keymesh-secrets-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let files = 0;
  const file = (content: string) => {
    const path = join(dir, `secret-${files++}`);
    writeFileSync(path, content);
    return path;
  };
  const PEPPER = "a-pepper-of-at-least-32-characters-0123";

  it("reads KEYMESH_PEPPER_FILE, DATABASE_URL_FILE and REDIS_URL_FILE, without the file's trailing newline", () => {
    const config = loadConfig({
      KEYMESH_PEPPER_FILE: file(`${PEPPER}\n`),
      DATABASE_URL_FILE: file("postgres://keymesh:s3cret@db:5432/keymesh\r\n"),
      REDIS_URL_FILE: file("rediss://:s3cret@cache:6380"),
    });
    expect(config.pepper).toBe(PEPPER);
    expect(config.databaseUrl).toBe("postgres://keymesh:s3cret@db:5432/keymesh");
    expect(config.redisUrl).toBe("rediss://:s3cret@cache:6380");
  });

  it("refuses a secret set both directly and as a file, naming both settings", () => {
    for (const name of ["KEYMESH_PEPPER", "DATABASE_URL", "REDIS_URL"]) {
      const values: Record<string, string> = {
        KEYMESH_PEPPER: PEPPER,
        DATABASE_URL: "postgres://u:p@db/x",
        REDIS_URL: "redis://cache:6379",
      };
      const env = { ...values, [`${name}_FILE`]: file(values[name]!) };
      expect(() => loadConfig(env), name).toThrow(
        new ConfigError(`${name}_FILE`, `and ${name} are both set; set only one of them`),
      );
    }
  });

  it("names the setting when its file is missing or empty, and applies the same checks as to the variable", () => {
    expect(() => loadConfig({ DATABASE_URL_FILE: join(dir, "absent") })).toThrow(
      /DATABASE_URL_FILE names a file that cannot be read \(ENOENT\)/,
    );
    expect(() => loadConfig({ REDIS_URL_FILE: file("\n") })).toThrow(/REDIS_URL_FILE names an empty file/);
    expect(() => loadConfig({ KEYMESH_PEPPER_FILE: file("short\n") })).toThrow(
      /KEYMESH_PEPPER_FILE must be at least 32/,
    );
    expect(() => loadConfig({ DATABASE_URL_FILE: file("postgres://u:p@db/x\n") })).toThrow(
      /KEYMESH_PEPPER is required when DATABASE_URL_FILE is set/,
    );
    expect(() => loadConfig({ REDIS_URL_FILE: file("http://cache\n") })).toThrow(/REDIS_URL_FILE must use/);
  });

  it("never echoes a secret file's content in an error, whatever the content", () => {
    // Generated contents: invalid URLs, short peppers, and anything else a mis-mounted secret might hold.
    const secretText = fc
      .oneof(
        fc.string({ minLength: 8, maxLength: 80 }),
        fc.webUrl(),
        // Something that parses as a URL with an unexpected scheme, such as a password with a colon in it.
        fc
          .tuple(fc.stringMatching(/^[a-z][a-z0-9+.-]{3,12}$/), fc.string({ maxLength: 40 }))
          .map(([a, b]) => `${a}:${b}`),
      )
      .filter((s) => s.replace(/[\r\n]+$/, "").trim().length >= 8);
    fc.assert(
      fc.property(
        secretText,
        fc.constantFrom("KEYMESH_PEPPER", "DATABASE_URL", "REDIS_URL"),
        (content, name) => {
          const env: Record<string, string> = { [`${name}_FILE`]: file(content) };
          if (name === "DATABASE_URL") env.KEYMESH_PEPPER = PEPPER;
          let message = "";
          try {
            loadConfig(env);
          } catch (error) {
            expect(error).toBeInstanceOf(ConfigError);
            message = (error as Error).message;
          }
          const stored = content.replace(/[\r\n]+$/, "");
          if (message) expect(message).not.toContain(stored);
        },
      ),
      { numRuns: 200 },
    );
  });
});
