import type { KeySpaceDirectory, KeySpaceSource } from "../domain/ports.js";
import type { KeySpace } from "../domain/types.js";
import { REFRESH_SHARE } from "./key-cache.js";

/** Names kept at most. Callers name key spaces (a KeyVerify caller may send any), and unknown names are kept too. */
const MAX_NAMES = 1024;

/**
 * Caches key spaces in process. Concurrent loads of one key space share one query, a key space in use is reloaded
 * before it expires (see REFRESH_SHARE: every Check names its key space, so an expired one sent every Check of
 * that moment to Postgres), and a load that began before `invalidate` (a change notification) does not fill the
 * cache.
 */
export function createCachedKeySpaces(
  source: KeySpaceSource,
  ttlMs: number,
  now: () => number = Date.now,
): KeySpaceDirectory & {
  invalidate(): void;
  /** The cached key space for `idOrName`, expired or not, without loading: for labels that must never wait. */
  peek(idOrName: string): KeySpace | undefined;
} {
  let byName = new Map<string, { space: KeySpace | undefined; at: number }>();
  const loading = new Map<string, Promise<KeySpace | undefined>>();
  let everything: { spaces: KeySpace[]; at: number } | undefined;
  let loadingAll: Promise<KeySpace[]> | undefined;
  let generation = 0;

  const load = (idOrName: string): Promise<KeySpace | undefined> => {
    const running = loading.get(idOrName);
    if (running) return running;
    const startedAt = generation;
    const pending: Promise<KeySpace | undefined> = source
      .load(idOrName)
      .then((space) => {
        if (startedAt === generation) {
          byName.delete(idOrName);
          byName.set(idOrName, { space, at: now() });
          // Maps iterate in insertion order: the first name is the one loaded longest ago.
          if (byName.size > MAX_NAMES) byName.delete(byName.keys().next().value as string);
        }
        return space;
      })
      .finally(() => {
        if (loading.get(idOrName) === pending) loading.delete(idOrName);
      });
    loading.set(idOrName, pending);
    return pending;
  };

  return {
    get(idOrName) {
      const hit = byName.get(idOrName);
      if (hit) {
        const age = now() - hit.at;
        if (age < ttlMs) {
          // A failed reload leaves the cached space until its TTL; the Check after that surfaces the error.
          if (age >= ttlMs * (1 - REFRESH_SHARE) && !loading.has(idOrName)) load(idOrName).catch(() => {});
          return hit.space;
        }
      }
      return load(idOrName);
    },
    peek(idOrName) {
      return byName.get(idOrName)?.space;
    },
    all() {
      if (everything && now() - everything.at < ttlMs) return Promise.resolve(everything.spaces);
      if (loadingAll) return loadingAll;
      const startedAt = generation;
      const pending: Promise<KeySpace[]> = source
        .loadAll()
        .then((spaces) => {
          if (startedAt === generation) everything = { spaces, at: now() };
          return spaces;
        })
        .finally(() => {
          if (loadingAll === pending) loadingAll = undefined;
        });
      loadingAll = pending;
      return pending;
    },
    invalidate() {
      generation++;
      byName = new Map();
      loading.clear();
      everything = undefined;
      loadingAll = undefined;
    },
  };
}
