import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type CacheScope, createKeyCache } from "../../src/cache/key-cache.js";
import type { KeyEntry } from "../../src/domain/key-entry.js";

// Few ids, so that generated entries share workspaces, owners and key spaces, and changes hit several at once.
const id = (prefix: string) => fc.constantFrom(`${prefix}1`, `${prefix}2`, `${prefix}3`);
const entryArb = fc.record({
  key: id("key"),
  space: id("space"),
  workspace: id("ws"),
  owner: fc.option(id("mem"), { nil: null }),
  workspaceOwner: fc.option(id("mem"), { nil: undefined }),
});
type Made = typeof entryArb extends fc.Arbitrary<infer T> ? T : never;

function toEntry(m: Made): KeyEntry {
  return {
    key: { id: m.key, keySpaceId: m.space },
    workspace: { id: m.workspace, ownerMemberId: m.workspaceOwner },
    owner: m.owner === null ? null : { id: m.owner },
  } as unknown as KeyEntry;
}

/** What a change of `scope` must make stale, stated directly over the entry. */
function stale(scope: CacheScope, m: Made): boolean {
  switch (scope.type) {
    case "key":
      return m.key === scope.id;
    case "workspace":
      return m.workspace === scope.id;
    case "member":
      return m.owner === scope.id || m.workspaceOwner === scope.id;
    case "key_space":
      return m.space === scope.id;
  }
}

const digest = fc.constantFrom("d1", "d2", "d3", "d4", "d5", "d6");
const scopeArb = fc.oneof(
  id("key").map((v) => ({ type: "key" as const, id: v })),
  id("ws").map((v) => ({ type: "workspace" as const, id: v })),
  id("mem").map((v) => ({ type: "member" as const, id: v })),
  id("space").map((v) => ({ type: "key_space" as const, id: v })),
);
const op = fc.oneof(
  fc.record({ set: digest, entry: entryArb }),
  fc.record({ missing: digest }),
  fc.record({ invalidate: scopeArb }),
);

describe("the key cache (no database)", () => {
  it("drops on a change exactly the entries it makes stale, whatever was set, replaced or evicted before (generated)", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), fc.integer({ min: 1, max: 6 }), (ops, maxEntries) => {
        const cache = createKeyCache({ ttlMs: 60_000, maxEntries, negativeTtlMs: 0, negativeMaxEntries: 0 });
        // The model: insertion-ordered, evicting the oldest, as the cache promises.
        const model = new Map<string, Made>();
        for (const o of ops) {
          if ("set" in o) {
            cache.set(o.set, toEntry(o.entry));
            model.delete(o.set);
            model.set(o.set, o.entry);
            while (model.size > maxEntries) model.delete(model.keys().next().value as string);
          } else if ("missing" in o) {
            cache.setMissing(o.missing);
            model.delete(o.missing);
          } else {
            cache.invalidate(o.invalidate);
            for (const [d, m] of model) if (stale(o.invalidate, m)) model.delete(d);
          }
          for (const d of ["d1", "d2", "d3", "d4", "d5", "d6"]) {
            const hit = cache.get(d);
            expect(hit.kind === "hit" ? hit.entry.key.id : undefined).toBe(model.get(d)?.key);
          }
          expect(cache.size).toBe(model.size);
        }
      }),
    );
  });

  it("drops known misses on any change, since a change can make an unknown key known", () => {
    const cache = createKeyCache({
      ttlMs: 60_000,
      maxEntries: 10,
      negativeTtlMs: 60_000,
      negativeMaxEntries: 10,
    });
    cache.setMissing("d1");
    expect(cache.get("d1").kind).toBe("miss");
    cache.invalidate({ type: "workspace", id: "elsewhere" });
    expect(cache.get("d1").kind).toBe("unknown");
  });
});
