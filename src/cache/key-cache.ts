import type { KeyEntry } from "../domain/key-entry.js";

/**
 * What the cache knows about a digest: a key, a known miss, or nothing. A hit with `refresh` is in the last part of
 * its TTL: it is still served, and the caller should re-read it in the background.
 */
export type CacheHit =
  | { kind: "hit"; entry: KeyEntry; refresh?: boolean }
  | { kind: "miss" }
  | { kind: "unknown" };

/** What a change notification names; see KeyCache.invalidate. */
export interface CacheScope {
  type: "key" | "workspace" | "member" | "key_space";
  id: string;
}

/** The ids under which an entry is found by invalidate, one per scope type it belongs to. */
function scopesOf(entry: KeyEntry): [CacheScope["type"], string | null | undefined][] {
  return [
    ["key", entry.key.id],
    ["workspace", entry.workspace.id],
    ["member", entry.owner?.id],
    ["member", entry.workspace.ownerMemberId],
    ["key_space", entry.key.keySpaceId],
  ];
}

/** An in-process cache of key entries by digest, with a bounded negative cache for unknown digests. */
export interface KeyCache {
  get(digestHex: string): CacheHit;
  /** Counts invalidations; a lookup that began before one must not fill the cache with what it read. */
  readonly generation: number;
  /** Stores an entry read at `generation`, unless an invalidation has happened since. */
  set(digestHex: string, entry: KeyEntry, generation?: number): void;
  setMissing(digestHex: string, generation?: number): void;
  /**
   * Drops the entries a change of `scope` makes stale: a key's own, a workspace's keys, the keys a member owns or
   * whose workspace the member owns, a key space's keys. Also drops every known miss. Costs the entries dropped,
   * not the cache's size, since it runs on the event loop that serves Checks.
   */
  invalidate(scope: CacheScope): void;
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
  // Digests by "type:id": invalidate finds a change's entries without scanning the cache.
  const index = new Map<string, Set<string>>();
  let generation = 0;
  let hits = 0;
  let negativeHits = 0;
  let misses = 0;

  function bound<V>(map: Map<string, V>, max: number, drop: (digest: string) => void) {
    // Maps iterate in insertion order, so the first key is the oldest entry.
    while (map.size > max) drop(map.keys().next().value as string);
  }

  function indexed(digest: string, entry: KeyEntry, add: boolean): void {
    for (const [type, id] of scopesOf(entry)) {
      if (!id) continue;
      const name = `${type}:${id}`;
      let digests = index.get(name);
      if (add) {
        if (!digests) {
          digests = new Set();
          index.set(name, digests);
        }
        digests.add(digest);
      } else if (digests?.delete(digest) && digests.size === 0) index.delete(name);
    }
  }

  function dropPositive(digest: string): void {
    const cached = positive.get(digest);
    if (!cached) return;
    positive.delete(digest);
    indexed(digest, cached.hit.entry, false);
  }
  const dropNegative = (digest: string) => negative.delete(digest);

  return {
    get(digestHex) {
      const t = now();
      const hit = positive.get(digestHex);
      if (hit) {
        if (hit.until > t) {
          hits++;
          return t < hit.refreshAt ? hit.hit : { ...hit.hit, refresh: true };
        }
        dropPositive(digestHex);
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
      dropPositive(digestHex);
      const t = now();
      positive.set(digestHex, {
        hit: Object.freeze({ kind: "hit", entry }),
        until: t + options.ttlMs,
        refreshAt: t + options.ttlMs * (1 - REFRESH_SHARE),
      });
      indexed(digestHex, entry, true);
      bound(positive, options.maxEntries, dropPositive);
    },
    setMissing(digestHex, readAt = generation) {
      if (readAt !== generation) return;
      // A re-read of a cached key that finds it gone ends the cached entry too.
      dropPositive(digestHex);
      if (options.negativeMaxEntries === 0 || options.negativeTtlMs === 0) return;
      negative.delete(digestHex);
      negative.set(digestHex, now() + options.negativeTtlMs);
      bound(negative, options.negativeMaxEntries, dropNegative);
    },
    invalidate(scope) {
      generation++;
      const digests = index.get(`${scope.type}:${scope.id}`);
      if (digests) for (const digest of [...digests]) dropPositive(digest);
      // A change can make an unknown digest known (a created or re-activated key), so misses go too.
      negative.clear();
    },
    clear() {
      generation++;
      positive.clear();
      negative.clear();
      index.clear();
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
