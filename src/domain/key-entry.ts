import type { Key, KeySpace, Member, Workspace } from "./types.js";

/** Everything a check needs to know about one stored key, loaded in one lookup. */
export interface KeyEntry {
  key: Key;
  digest: Buffer;
  workspace: Workspace;
  /** The owning member, for user keys; null for organization keys without one. */
  owner: Member | null;
}

/** Finds a key by the digest of its canonical form. */
export interface KeyLookup {
  findByDigest(digest: Buffer): Promise<KeyEntry | undefined>;
}

/** Resolves a key space by id or name. */
export interface KeySpaceDirectory {
  /** The key space, directly when it is at hand (cached), else a promise of it: this runs on every Check. */
  get(idOrName: string): KeySpace | undefined | Promise<KeySpace | undefined>;
  /** Every non-system key space, for inferring which one a key belongs to. */
  all(): Promise<KeySpace[]>;
}

/** Records that a key was used, without a database write per request. */
export interface UsageRecorder {
  touch(keyId: string): void;
}
