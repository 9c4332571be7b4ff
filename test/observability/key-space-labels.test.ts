/** The bounded key_space label (no Postgres or Redis). */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { createKeySpaceLabels, type NamedKeySpace } from "../../src/observability/key-space-labels.js";

/** A directory of key spaces `ks_0`… named `space-0`…, as the key-space cache would answer. */
function directory(count: number): (idOrName: string) => NamedKeySpace | undefined {
  const spaces = Array.from({ length: count }, (_, i) => ({ id: `ks_${i}`, name: `space-${i}` }));
  return (idOrName) => spaces.find((s) => s.id === idOrName || s.name === idOrName);
}

describe("key_space label", () => {
  it("never has more than `max` key spaces plus other, unknown and unnamed, whatever requests name", () => {
    // Requests name real key spaces by id or name, unknown text (a pasted key, garbage) or nothing at all.
    const spelling = fc.oneof(
      fc.nat(40).map((i) => `ks_${i}`),
      fc.nat(40).map((i) => `space-${i}`),
      fc.string(),
      fc.constant(""),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.array(spelling, { maxLength: 300 }), (max, named) => {
        const labels = createKeySpaceLabels({ max, lookup: directory(30) });
        const used = new Set(named.map((n) => labels.values[labels.indexOf(n)]!));
        const spaces = [...used].filter((v) => !["other", "unknown", "unnamed"].includes(v));
        expect(spaces.length).toBeLessThanOrEqual(max);
        // A label is a key space's id or one of the three fixed values: never a caller's text.
        for (const value of used) expect(value).toMatch(/^(ks_\d+|other|unknown|unnamed)$/);
      }),
    );
  });

  it("counts a key space named by id and by name under one label, its id", () => {
    const labels = createKeySpaceLabels({ max: 5, lookup: directory(3) });
    expect(labels.indexOf("space-1")).toBe(labels.indexOf("ks_1"));
    expect(labels.values[labels.indexOf("space-1")]).toBe("ks_1");
    expect(labels.indexOfId("ks_1")).toBe(labels.indexOf("ks_1"));
  });

  it("gives the first `max` key spaces seen their own label and the rest `other`", () => {
    const labels = createKeySpaceLabels({ max: 2, lookup: directory(5) });
    const seen = ["space-3", "ks_0", "space-4", "space-3", "ks_1"].map(
      (n) => labels.values[labels.indexOf(n)],
    );
    expect(seen).toEqual(["ks_3", "ks_0", "other", "ks_3", "other"]);
    expect([...labels.named()]).toEqual([
      { id: "ks_3", name: "space-3" },
      { id: "ks_0", name: "space-0" },
    ]);
  });

  it("labels a request naming nothing by the default key space, or `unnamed` without one", () => {
    expect(createKeySpaceLabels({ max: 2, lookup: directory(2) }).values[2]).toBe("unnamed");
    const none = createKeySpaceLabels({ max: 2, lookup: directory(2) });
    expect(none.values[none.indexOf("")]).toBe("unnamed");
    const withDefault = createKeySpaceLabels({ max: 2, lookup: directory(2), defaultKeySpace: "space-1" });
    expect(withDefault.values[withDefault.indexOf("")]).toBe("ks_1");
  });

  it("labels a key space that is not at hand `unknown` until it is", () => {
    let known = false;
    const labels = createKeySpaceLabels({
      max: 2,
      lookup: (n) => (known && n === "late" ? { id: "ks_late", name: "late" } : undefined),
    });
    expect(labels.values[labels.indexOf("late")]).toBe("unknown");
    known = true;
    expect(labels.values[labels.indexOf("late")]).toBe("ks_late");
  });
});
