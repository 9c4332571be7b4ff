import type { KeyEntry } from "./key-entry.js";

/**
 * Memoises `build(entry, context)` per cached key entry. Cached entries are replaced, never changed in place, so what
 * is derived from one (its identity, its buckets) is built once rather than per Check; it is built again if the
 * entry's key or workspace record, or `context`, is swapped for another object.
 */
export function memoPerEntry<T, C = void>(
  build: (entry: KeyEntry, context: C) => T,
): (entry: KeyEntry, context: C) => T {
  const built = new WeakMap<
    KeyEntry,
    { key: KeyEntry["key"]; workspace: KeyEntry["workspace"]; context: C; value: T }
  >();
  return (entry, context) => {
    const hit = built.get(entry);
    if (hit && hit.key === entry.key && hit.workspace === entry.workspace && hit.context === context)
      return hit.value;
    const value = build(entry, context);
    built.set(entry, { key: entry.key, workspace: entry.workspace, context, value });
    return value;
  };
}
