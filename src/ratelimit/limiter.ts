import type { Limit } from "../domain/types.js";
import type { LimitStatus } from "../domain/verdict.js";

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
