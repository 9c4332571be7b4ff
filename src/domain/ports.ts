/**
 * The contracts the domain depends on. Adapters (src/store, src/cache, src/ratelimit) implement them and the
 * composition root (src/core.ts) wires them in, so every import points down to the domain.
 */
import type { KeyEntry } from "./key-entry.js";
import type { KeySpace, Limit } from "./types.js";
import type { LimitStatus } from "./verdict.js";

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

/** Where cached key spaces come from: Postgres in production (createPostgresKeySpaces), a fake in tests. */
export interface KeySpaceSource {
  load(idOrName: string): Promise<KeySpace | undefined>;
  loadAll(): Promise<KeySpace[]>;
}

/** Records that a key was used, without a database write per request. */
export interface UsageRecorder {
  touch(keyId: string): void;
}

/** A cache the authorizer reads through; see src/cache/key-cache.ts. */
export interface EntryCache {
  /** A hit with `refresh` is still valid but should be re-read in the background, before it expires. */
  get(
    digestHex: string,
  ): { kind: "hit"; entry: KeyEntry; refresh?: boolean } | { kind: "miss" } | { kind: "unknown" };
  readonly generation: number;
  set(digestHex: string, entry: KeyEntry, generation?: number): void;
  setMissing(digestHex: string, generation?: number): void;
}

/** One bucket a request draws from. */
export interface Bucket {
  /** Unique within the request's tag, e.g. `k:<keyId>:minute` or `w:minute`. */
  id: string;
  limit: Limit;
  appliesTo: LimitStatus["appliesTo"];
}

/** Every bucket one request touches; all share `tag` so that Redis Cluster keeps them in one slot. */
export interface LimitRequest {
  tag: string;
  buckets: readonly Bucket[];
  cost: number;
}

/** Whether the request fits every bucket, and each bucket's state afterwards. */
export interface LimitResult {
  allowed: boolean;
  statuses: LimitStatus[];
}

/** Token buckets checked and consumed atomically: all buckets pass or none is charged. */
export interface RateLimiter {
  /** Rejects (never resolves to a denial) when the backend fails or times out. */
  consume(request: LimitRequest): Promise<LimitResult>;
  close(): Promise<void>;
}

/** A request that an approval-level scope queued for a human. */
export interface ApprovalRequest {
  keyId: string;
  workspaceId: string;
  keySpaceId: string;
  method: string;
  path: string;
  bodyDigest: Buffer;
  body: Uint8Array | undefined;
  /** Request headers with every credential removed. */
  headers: Record<string, string>;
  requiredScope: string;
}

/** Records pending approvals and redeems approved ones exactly once. */
export interface ApprovalGate {
  /** Creates a pending approval and returns its id. */
  open(request: ApprovalRequest): Promise<string>;
  /** Uses up an approved approval for the same key, method, path and body; false when there is none to use. */
  redeem(
    id: string,
    match: { keyId: string; method: string; path: string; bodyDigest: Buffer },
  ): Promise<boolean>;
}
