import { chmod, mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { loadCliConfig } from "../../src/cli/config.js";
import { createContext } from "../../src/cli/context.js";
import { CliError } from "../../src/cli/errors.js";
import { createPrinter } from "../../src/cli/output.js";

const usage = (fn: () => unknown) => {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CliError);
    expect((error as CliError).exitCode).toBe(64);
    return (error as Error).message;
  }
  throw new Error("no usage error");
};

/** Whether the CLI would send a root key to `addr`, given `insecure`. */
function sendsTo(addr: string, insecure: boolean): boolean {
  const config = loadCliConfig({ addr, insecure }, { env: { KEYMESH_ROOT_KEY: "km_root_x" } });
  const ctx = createContext(config, createPrinter("json"), new AbortController().signal);
  try {
    ctx.admin();
    return true;
  } catch (error) {
    expect((error as Error).message).toContain("refusing to send keys in clear text");
    return false;
  }
}

describe("CLI configuration (no services)", () => {
  it("takes flags over the environment, and derives the Check address from --addr", () => {
    const env = { KEYMESH_ADDR: "http://127.0.0.1:1111", KEYMESH_TIMEOUT_MS: "500" };
    const fromEnv = loadCliConfig({}, { env });
    expect(fromEnv.addr.origin).toBe("http://127.0.0.1:1111");
    expect(fromEnv.grpcAddr.origin).toBe("http://127.0.0.1:9090");
    expect(fromEnv.timeoutMs).toBe(500);
    const fromFlags = loadCliConfig(
      { addr: "localhost:2222", grpcAddr: "127.0.0.1:3333", timeout: "70" },
      { env },
    );
    expect(fromFlags.addr.origin).toBe("http://localhost:2222");
    expect(fromFlags.grpcAddr.origin).toBe("http://127.0.0.1:3333");
    expect(fromFlags.timeoutMs).toBe(70);
    expect(loadCliConfig({ addr: "keymesh.example.com:8443" }, { env: {} }).addr.origin).toBe(
      "https://keymesh.example.com:8443",
    );
    expect(loadCliConfig({}, { env: {}, stdoutIsTTY: true }).output).toBe("table");
    expect(loadCliConfig({}, { env: {}, stdoutIsTTY: false }).output).toBe("plain");
    expect(usage(() => loadCliConfig({ output: "xml" }, { env: {} }))).toContain("--output");
    expect(usage(() => loadCliConfig({ timeout: "soon" }, { env: {} }))).toContain("--timeout");
    expect(usage(() => loadCliConfig({ addr: "ftp://x" }, { env: {} }))).toContain("http:// or https://");
    expect(usage(() => loadCliConfig({ addr: "http://x/api" }, { env: {} }))).toContain("no path");
  });

  it("reads the root key from the environment or a file, trimmed, warning when others can read the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "keymesh-config-"));
    const file = join(dir, "root");
    await writeFile(file, "  km_root_from_file\n");
    await chmod(file, 0o644);
    const warnings: string[] = [];
    const warn = (m: string) => warnings.push(m);
    expect(loadCliConfig({}, { env: { KEYMESH_ROOT_KEY: "km_root_env" }, warn }).rootKey()).toBe(
      "km_root_env",
    );
    expect(
      loadCliConfig({ rootKeyFile: file }, { env: { KEYMESH_ROOT_KEY: "km_root_env" }, warn }).rootKey(),
    ).toBe("km_root_from_file");
    expect(warnings).toEqual([`${file} is readable by other users; chmod 600 it, it holds a root key`]);
    await chmod(file, 0o600);
    warnings.length = 0;
    expect(loadCliConfig({}, { env: { KEYMESH_ROOT_KEY_FILE: file }, warn }).rootKey()).toBe(
      "km_root_from_file",
    );
    expect(warnings).toEqual([]);
    expect(usage(() => loadCliConfig({}, { env: {} }).rootKey())).toContain("KEYMESH_ROOT_KEY");
    await writeFile(file, "\n");
    expect(usage(() => loadCliConfig({ rootKeyFile: file }, { env: {} }).rootKey())).toContain("is empty");
    // A missing file names itself but never a key.
    const missing = usage(() => loadCliConfig({ rootKeyFile: join(dir, "nope") }, { env: {} }).rootKey());
    expect(missing).toContain("ENOENT");
  });

  it("never sends keys over plain http to another host without --insecure, whatever the host", () => {
    const remote = fc.oneof(
      fc.domain(),
      fc.ipV4().filter((ip) => !ip.startsWith("127.")),
      fc.ipV6().filter((ip) => ip !== "::1" && !/^(0{0,4}:){2,7}0{0,3}1$/.test(ip) && ip !== "::"),
    );
    fc.assert(
      fc.property(remote, fc.integer({ min: 1, max: 65_535 }), (host, port) => {
        const authority = host.includes(":") ? `[${host}]` : host;
        const url = `http://${authority}:${port}`;
        // URL parsing may turn a numeric-looking name into a loopback address; those are this machine.
        if (/^(127\.|\[::1\]|localhost$)/i.test(new URL(url).hostname)) return;
        expect(sendsTo(url, false)).toBe(false);
        expect(sendsTo(url, true)).toBe(true);
        expect(sendsTo(`https://${authority}:${port}`, false)).toBe(true);
      }),
      { numRuns: 300 },
    );
    for (const local of [
      "http://127.0.0.1:8080",
      "http://127.8.9.10:1",
      "http://localhost:8080",
      "http://[::1]:8080",
    ])
      expect(sendsTo(local, false)).toBe(true);
  });
});
