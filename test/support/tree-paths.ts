/** Addressing values inside parsed YAML or JSON trees, for tests that rewrite one key of a configuration. */

/** Keys and list indexes leading to a value from the top of a tree. */
export type Path = (string | number)[];

type Node = Record<string | number, unknown>;

/** Every path to a key of an object inside `tree`, depth first. */
export function keyPaths(tree: unknown, at: Path = []): Path[] {
  if (Array.isArray(tree)) return tree.flatMap((x, i) => keyPaths(x, [...at, i]));
  if (typeof tree !== "object" || tree === null) return [];
  return Object.entries(tree).flatMap(([k, v]) => [[...at, k], ...keyPaths(v, [...at, k])]);
}

/** The value at `path`. */
export function valueAt(tree: unknown, path: Path): unknown {
  let node = tree;
  for (const step of path) node = (node as Node)[step];
  return node;
}

/** A copy of `tree` with the value at `path` replaced. */
export function withValue<T>(tree: T, path: Path, value: unknown): T {
  const copy = structuredClone(tree);
  (valueAt(copy, path.slice(0, -1)) as Node)[path.at(-1)!] = value;
  return copy;
}

/** A copy of `tree` with the key at `path` renamed to `name`, in place among its siblings. */
export function withKeyRenamed<T>(tree: T, path: Path, name: string): T {
  const copy = structuredClone(tree);
  const parent = valueAt(copy, path.slice(0, -1)) as Node;
  const entries = Object.entries(parent);
  for (const k of Object.keys(parent)) delete parent[k];
  for (const [k, v] of entries) parent[k === path.at(-1) ? name : k] = v;
  return copy;
}
