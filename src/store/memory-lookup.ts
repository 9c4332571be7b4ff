import type { KeyEntry } from "../domain/key-entry.js";
import type { KeyLookup, KeySpaceDirectory, UsageRecorder } from "../domain/ports.js";
import type { KeySpace } from "../domain/types.js";

/** An in-memory key lookup, for unit tests and embedding. */
export function createMemoryKeyLookup(
  entries: KeyEntry[] = [],
): KeyLookup & { add(entry: KeyEntry): void; lookups: number } {
  const byDigest = new Map(entries.map((e) => [e.digest.toString("hex"), e]));
  const lookup = {
    lookups: 0,
    async findByDigest(digest: Buffer) {
      lookup.lookups++;
      return byDigest.get(digest.toString("hex"));
    },
    add(entry: KeyEntry) {
      byDigest.set(entry.digest.toString("hex"), entry);
    },
  };
  return lookup;
}

/** An in-memory key space directory. */
export function createMemoryKeySpaces(spaces: KeySpace[]): KeySpaceDirectory {
  return {
    get(idOrName) {
      return spaces.find((s) => s.id === idOrName || s.name === idOrName);
    },
    async all() {
      return spaces;
    },
  };
}

/** A usage recorder that counts touches in memory. */
export function createMemoryUsage(): UsageRecorder & { counts: Map<string, number> } {
  const counts = new Map<string, number>();
  return { counts, touch: (id) => counts.set(id, (counts.get(id) ?? 0) + 1) };
}
