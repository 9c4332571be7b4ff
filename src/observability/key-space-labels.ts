/** A key space as metrics and spans name it. */
export interface NamedKeySpace {
  id: string;
  name: string;
}

/**
 * The bounded `key_space` label. A request names its key space by id or name (or not at all); the label is the
 * key space's id, so both spellings count together, and a name that is no key space (a KeyVerify caller may send
 * anything, even a key pasted in the wrong field) is never written out. The first `max` key spaces seen get a label
 * of their own; the rest share `other`.
 */
export interface KeySpaceLabels {
  /** Label values by index; see `indexOf`. */
  readonly values: readonly string[];
  /** The label index for a request naming `named` (an id, a name or ""); one Map read once it has been seen. */
  indexOf(named: string): number;
  /** The label index for the id of a key space known to exist (an allowed key's): one Map read, no lookup. */
  indexOfId(id: string): number;
  /** The key space id for spans and logs (unbounded, never a caller's free text): the id, `unknown` or `unnamed`. */
  resolve(named: string): string;
  /** Each labelled key space whose name is at hand, for an info metric joining ids to names. */
  named(): Iterable<NamedKeySpace>;
}

/** Label indexes that name no single key space. */
export const OTHER_LABEL = 0;
export const UNKNOWN_LABEL = 1;
export const UNNAMED_LABEL = 2;
const SPECIAL = ["other", "unknown", "unnamed"];

/**
 * Creates the labeler. `lookup` answers from what is at hand (the key-space cache) and never waits: a key space not
 * at hand is `unknown` for that request and looked up again on the next one.
 */
export function createKeySpaceLabels(options: {
  max: number;
  /** The key space a request that names none is checked against (KEYMESH_DEFAULT_KEY_SPACE). */
  defaultKeySpace?: string;
  lookup: (idOrName: string) => NamedKeySpace | undefined;
}): KeySpaceLabels {
  const values = [...SPECIAL];
  const byId = new Map<string, number>();
  // What each spelling seen resolved to; bounded, as callers choose spellings. Past the bound, resolved each time.
  const bySpelling = new Map<string, number>();
  const maxSpellings = options.max * 4 + 64;
  // Names met while resolving a spelling, for `named()`: the cache may hold a key space under its name only.
  const names = new Map<string, string>();

  const labelOf = (id: string): number => {
    const known = byId.get(id);
    if (known !== undefined) return known;
    if (values.length - SPECIAL.length >= options.max) return OTHER_LABEL;
    const index = values.push(id) - 1;
    byId.set(id, index);
    return index;
  };

  const remember = (spelling: string, index: number): number => {
    if (bySpelling.size < maxSpellings) bySpelling.set(spelling, index);
    return index;
  };

  return {
    values,
    indexOf(named) {
      const index = bySpelling.get(named);
      if (index !== undefined) return index;
      const spelling = named || options.defaultKeySpace || "";
      if (!spelling) return remember(named, UNNAMED_LABEL);
      const space = options.lookup(spelling);
      // Not remembered: the key space may be created, or reach the cache, later.
      if (!space) return UNKNOWN_LABEL;
      const label = labelOf(space.id);
      if (label !== OTHER_LABEL) names.set(space.id, space.name);
      return remember(named, label);
    },
    indexOfId(id) {
      const index = byId.get(id);
      return index === undefined ? labelOf(id) : index;
    },
    resolve(named) {
      const spelling = named || options.defaultKeySpace || "";
      if (!spelling) return SPECIAL[UNNAMED_LABEL]!;
      return options.lookup(spelling)?.id ?? SPECIAL[UNKNOWN_LABEL]!;
    },
    *named() {
      for (let i = SPECIAL.length; i < values.length; i++) {
        const id = values[i]!;
        const name = names.get(id) ?? options.lookup(id)?.name;
        if (name !== undefined) yield { id, name };
      }
    },
  };
}
