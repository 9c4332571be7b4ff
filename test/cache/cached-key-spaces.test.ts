import { describe, expect, it } from "vitest";
import { createCachedKeySpaces } from "../../src/cache/cached-key-spaces.js";
import type { KeySpaceSource } from "../../src/domain/ports.js";
import type { KeySpace } from "../../src/domain/types.js";

const TTL = 10_000;
const space = (name: string) => ({ id: `ks_${name}`, name }) as KeySpace;

/** A source whose loads the test settles by hand, on a clock the test moves. */
function setup() {
  let t = 1_000_000;
  const pending: { name: string; settle: (space: KeySpace | undefined) => void; fail: (e: Error) => void }[] =
    [];
  let loadAlls = 0;
  const source: KeySpaceSource = {
    load: (name) => new Promise((resolve, reject) => pending.push({ name, settle: resolve, fail: reject })),
    loadAll: async () => {
      loadAlls++;
      return [space("all")];
    },
  };
  const spaces = createCachedKeySpaces(source, TTL, () => t);
  /** Settles every pending load with a key space of its name. */
  const settleAll = async () => {
    for (const p of pending.splice(0)) p.settle(space(p.name));
    await tick();
  };
  return {
    spaces,
    pending,
    loadAlls: () => loadAlls,
    advance: (ms: number) => (t += ms),
    settleAll,
    /** Gets a key space that must be loaded again (a promise), and what the load answers. */
    loadedAgain: async (name: string) => {
      const got = spaces.get(name);
      expect(got).toBeInstanceOf(Promise);
      await settleAll();
      return got;
    },
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("cached key spaces", () => {
  it("shares one load among concurrent gets of a key space not yet cached, then answers without a promise", async () => {
    const { spaces, pending, settleAll } = setup();
    const gets = Array.from({ length: 100 }, () => spaces.get("trumpet"));
    expect(pending).toHaveLength(1);
    await settleAll();
    for (const got of gets) expect(await got).toMatchObject({ name: "trumpet" });
    expect(spaces.get("trumpet")).toMatchObject({ name: "trumpet" });
  });

  it("reloads a key space in use in the background before its TTL ends, serving the cached one meanwhile", async () => {
    const { spaces, pending, advance, settleAll } = setup();
    spaces.get("trumpet");
    await settleAll();
    advance(7_000);
    expect(spaces.get("trumpet")).toMatchObject({ name: "trumpet" });
    expect(pending).toHaveLength(0);
    advance(1_500);
    for (let i = 0; i < 10; i++) expect(spaces.get("trumpet")).toMatchObject({ name: "trumpet" });
    expect(pending).toHaveLength(1);
    await settleAll();
    // Past the first TTL, the reloaded space answers without a load.
    advance(5_000);
    expect(spaces.get("trumpet")).toMatchObject({ name: "trumpet" });
    expect(pending).toHaveLength(0);
  });

  it("keeps a key space whose background reload fails until its TTL, then loads it again", async () => {
    const { spaces, pending, advance, settleAll, loadedAgain } = setup();
    spaces.get("trumpet");
    await settleAll();
    advance(8_500);
    spaces.get("trumpet");
    pending.splice(0)[0]?.fail(new Error("database down"));
    await tick();
    expect(spaces.get("trumpet")).toMatchObject({ name: "trumpet" });
    advance(2_000);
    expect(await loadedAgain("trumpet")).toMatchObject({ name: "trumpet" });
  });

  it("does not fill the cache with a load that began before an invalidation", async () => {
    const { spaces, pending, loadedAgain } = setup();
    spaces.get("trumpet");
    const stale = pending.splice(0)[0];
    spaces.invalidate();
    stale?.settle(space("stale"));
    await tick();
    expect(await loadedAgain("trumpet")).toMatchObject({ name: "trumpet" });
  });

  it("keeps at most 1,024 names, dropping the one loaded longest ago", async () => {
    const { spaces, pending, settleAll } = setup();
    for (let i = 0; i <= 1024; i++) spaces.get(`space-${i}`);
    await settleAll();
    expect(spaces.get("space-1024")).toMatchObject({ name: "space-1024" });
    expect(spaces.get("space-1")).toMatchObject({ name: "space-1" });
    expect(spaces.get("space-0")).toBeInstanceOf(Promise);
    expect(pending.map((p) => p.name)).toEqual(["space-0"]);
  });

  it("shares and caches the list of every key space", async () => {
    const { spaces, loadAlls, advance } = setup();
    await Promise.all([spaces.all(), spaces.all(), spaces.all()]);
    await spaces.all();
    expect(loadAlls()).toBe(1);
    advance(TTL);
    await spaces.all();
    expect(loadAlls()).toBe(2);
  });
});
