import type { KeyEntry } from "../domain/key-entry.js";

/**
 * What the cache knows about a digest: a key, a known miss, or nothing. A hit with `refresh` is in the last part of
 * its TTL: it is still served, and the caller should re-read it in the background.
 */
export type CacheHit =
  | { kind: "hit"; entry: KeyEntry; refresh?: boolean }
  | { kind: "miss" }
  | { kind: "unknown" };

/** An in-process cache of key entries by digest, with a bounded negative cache for unknown digests. */
export interface KeyCache {
  get(digestHex: string): CacheHit;
  /** Counts invalidations; a lookup that began before one must not fill the cache with what it read. */
  readonly generation: number;
  /** Stores an entry read at `generation`, unless an invalidation has happened since. */
  set(digestHex: string, entry: KeyEntry, generation?: number): void;
  setMissing(digestHex: string, generation?: number): void;
  /** Drops every entry that `matches`; used when a key, workspace, member or key space changes. */
  invalidate(matches: (entry: KeyEntry) => boolean): void;
  /** Drops everything, for when change notifications may have been missed. */
  clear(): void;
  readonly size: number;
  /** Reads since start by result, and the negative cache's size, for metrics. */
  stats(): { hits: number; negativeHits: number; misses: number; negativeEntries: number };
}

// Shared answers: a flood of unknown keys then allocates nothing here.
const MISS: CacheHit = Object.freeze({ kind: "miss" });
const UNKNOWN: CacheHit = Object.freeze({ kind: "unknown" });

/**
 * The share of a TTL at whose end an entry still in use is re-read in the background (keys here, key spaces in
 * cached-key-spaces.ts). It is then replaced before it expires, so none of its Checks waits on Postgres, while
 * staleness stays bounded by the TTL. Under saturation, the Checks queued behind an expired entry's query missed
 * their deadline.
 */
export const REFRESH_SHARE = 0.2;

interface Cached {
  /** Returned as is on every hit until `refreshAt`: a hit allocates nothing. */
  hit: Extract<CacheHit, { kind: "hit" }>;
  until: number;
  refreshAt: number;
}

/** Creates a key cache with TTLs bounding staleness even if a change notification is lost. */
export function createKeyCache(options: {
  ttlMs: number;
  maxEntries: number;
  negativeTtlMs: number;
  negativeMaxEntries: number;
  now?: () => number;
}): KeyCache {
  const now = options.now ?? Date.now;
  const positive = new Map<string, Cached>();
  const negative = new Map<string, number>();
  let generation = 0;
  let hits = 0;
  let negativeHits = 0;
  let misses = 0;

  function bound<V>(map: Map<string, V>, max: number) {
    // Maps iterate in insertion order, so the first key is the oldest entry.
    while (map.size > max) map.delete(map.keys().next().value as string);
  }

  return {
    get(digestHex) {
      const t = now();
      const hit = positive.get(digestHex);
      if (hit) {
        if (hit.until > t) {
          hits++;
          return t < hit.refreshAt ? hit.hit : { ...hit.hit, refresh: true };
        }
        positive.delete(digestHex);
      }
      const missUntil = negative.get(digestHex);
      if (missUntil !== undefined) {
        if (missUntil > t) {
          negativeHits++;
          return MISS;
        }
        negative.delete(digestHex);
      }
      misses++;
      return UNKNOWN;
    },
    set(digestHex, entry, readAt = generation) {
      if (readAt !== generation) return;
      negative.delete(digestHex);
      positive.delete(digestHex);
      const t = now();
      positive.set(digestHex, {
        hit: Object.freeze({ kind: "hit", entry }),
        until: t + options.ttlMs,
        refreshAt: t + options.ttlMs * (1 - REFRESH_SHARE),
      });
      bound(positive, options.maxEntries);
    },
    setMissing(digestHex, readAt = generation) {
      if (readAt !== generation) return;
      // A re-read of a cached key that finds it gone ends the cached entry too.
      positive.delete(digestHex);
      if (options.negativeMaxEntries === 0 || options.negativeTtlMs === 0) return;
      negative.delete(digestHex);
      negative.set(digestHex, now() + options.negativeTtlMs);
      bound(negative, options.negativeMaxEntries);
    },
    invalidate(matches) {
      generation++;
      for (const [digest, { hit }] of positive) if (matches(hit.entry)) positive.delete(digest);
      // A change can make an unknown digest known (a created or re-activated key), so misses go too.
      negative.clear();
    },
    clear() {
      generation++;
      positive.clear();
      negative.clear();
    },
    get generation() {
      return generation;
    },
    get size() {
      return positive.size;
    },
    stats: () => ({ hits, negativeHits, misses, negativeEntries: negative.size }),
  };
}
