import { after, type Deadline } from "../runtime/deadline.js";

/** What a batched request must carry: the Redis keys it touches. */
export interface BatchedRequest {
  readonly keys: readonly string[];
}

/**
 * Runs one script call for many requests: `keys` holds each key of the batch once, `slot` gives a key's 1-based
 * position in it (as Lua's KEYS), and `requests` are in the order they were made. `dueAt` (Date.now() time,
 * infinite without a timeout) is when the batch's callers are told it failed: the script must not act after it.
 * Resolves with one part per request.
 */
export type BatchRunner<R extends BatchedRequest> = (
  keys: string[],
  slot: ReadonlyMap<string, number>,
  requests: readonly R[],
  dueAt: number,
) => Promise<unknown>;

/** Collects the requests of one event-loop turn into script calls, one per group, each of at most `maxRequests`. */
export interface ScriptBatcher<R extends BatchedRequest> {
  /** Queues one request; resolves with its own part of the reply. */
  submit(group: string, request: R): Promise<unknown>;
}

/** How batches are cut and how long a request may wait for its reply. */
export interface ScriptBatchOptions<R extends BatchedRequest = BatchedRequest> {
  /** Most requests in one call (default 64). */
  maxRequests?: number;
  /** A request still unanswered this long after its batch opened is rejected with `timeoutMessage`. */
  timeoutMs?: number;
  timeoutMessage?: string;
  /**
   * Called with a call's requests and its reply (one part per request) when the reply arrives after the deadline
   * rejected them: whatever the script did for them, their callers were told it failed.
   */
  onLate?: (requests: readonly R[], reply: readonly unknown[]) => void;
}

interface Batch<R> {
  requests: Pending<R>[];
  /** Armed when the batch opens, so its first request waits at most timeoutMs and later ones less. */
  deadline: Deadline | undefined;
  /** When that deadline is due (Date.now() time); infinite without a timeout. */
  dueAt: number;
  /** Set once the deadline has rejected the batch's requests. */
  expired: boolean;
}

interface Pending<R> {
  request: R;
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

/**
 * Creates a batcher over `run`. Under load a Check arrives with dozens of others in the same socket read; sending
 * them as one script call costs one command's client and server overhead instead of dozens. Requests of different
 * groups (Redis Cluster hash tags) never share a call, since a script's keys must live in one slot. A lone
 * request waits only until the end of the current event-loop turn.
 */
export function createScriptBatcher<R extends BatchedRequest>(
  run: BatchRunner<R>,
  options: ScriptBatchOptions<R> = {},
): ScriptBatcher<R> {
  const maxRequests = options.maxRequests ?? 64;
  const { timeoutMs, onLate } = options;
  const timeoutMessage = options.timeoutMessage ?? "script call timed out";
  let queued = new Map<string, Batch<R>>();
  let scheduled = false;

  // One deadline per batch, not per request: every request of a batch shares its fate, and this runs per Check.
  const open = (group: string): Batch<R> => {
    const batch: Batch<R> = {
      requests: [],
      deadline: undefined,
      dueAt: Number.POSITIVE_INFINITY,
      expired: false,
    };
    if (timeoutMs !== undefined) {
      batch.dueAt = Date.now() + timeoutMs;
      batch.deadline = after(timeoutMs, () => {
        // A loop stalled past the deadline before the batch went out: its callers are told it failed, so it must
        // never be sent (Redis would charge them).
        if (queued.get(group) === batch) queued.delete(group);
        batch.expired = true;
        rejectAll(batch.requests, new Error(timeoutMessage));
      });
    }
    return batch;
  };

  const send = (opened: Batch<R>): void => {
    const { requests: batch, deadline, dueAt } = opened;
    // Due already, though its deadline has not run yet: a deadline that comes due during a stall waits for the
    // turn's I/O (see deadline.ts), which may be this flush. Its callers are about to be told it failed.
    if (Date.now() >= dueAt) {
      deadline?.cancel();
      rejectAll(batch, new Error(timeoutMessage));
      return;
    }
    // A hot key is in most requests of a batch: it is sent once, and the script reads and writes it once.
    const keys: string[] = [];
    const slot = new Map<string, number>();
    const requests: R[] = [];
    for (const p of batch) {
      for (const key of p.request.keys) {
        if (!slot.has(key)) slot.set(key, keys.push(key));
      }
      requests.push(p.request);
    }
    let pending: Promise<unknown>;
    try {
      pending = run(keys, slot, requests, dueAt);
    } catch (error) {
      // A client that throws instead of rejecting must not crash the process from a setImmediate callback.
      pending = Promise.reject(error);
    }
    // A reply after the deadline settles nothing: each request's promise has already been rejected. What the script
    // did for them is reported to onLate, so that it can be undone.
    pending.then(
      (reply) => {
        if (opened.expired) {
          if (onLate && Array.isArray(reply) && reply.length === batch.length) {
            try {
              onLate(requests, reply);
            } catch {
              // Best effort: nothing is waiting on this reply any more, so there is no one to tell.
            }
          }
          return;
        }
        deadline?.cancel();
        if (!Array.isArray(reply) || reply.length !== batch.length) {
          rejectAll(batch, new Error("rate limiter: malformed script reply"));
          return;
        }
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(reply[i]);
      },
      (error: unknown) => {
        deadline?.cancel();
        rejectAll(batch, error);
      },
    );
  };

  const flush = (): void => {
    scheduled = false;
    const groups = queued;
    queued = new Map();
    for (const batch of groups.values()) send(batch);
  };

  return {
    submit(group, request) {
      return new Promise((resolve, reject) => {
        let batch = queued.get(group);
        if (!batch) {
          batch = open(group);
          queued.set(group, batch);
        }
        batch.requests.push({ request, resolve, reject });
        if (batch.requests.length >= maxRequests) {
          queued.delete(group);
          send(batch);
        } else if (!scheduled) {
          scheduled = true;
          // setImmediate, not a microtask: requests decoded from the same socket read are all queued by then.
          setImmediate(flush);
        }
      });
    },
  };
}

/** Fails every request of a batch with the same error: they share one script call, and so its fate. */
function rejectAll(requests: readonly Pending<unknown>[], error: unknown): void {
  for (const p of requests) p.reject(error);
}
