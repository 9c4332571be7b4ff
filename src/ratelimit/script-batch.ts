/** Runs one script call for many requests: the keys of all, then the argument count and the arguments of each. */
export type BatchRunner = (keys: string[], args: (string | number)[]) => Promise<unknown>;

/** Collects the consumes of one event-loop turn into script calls, one per group, each of at most `maxRequests`. */
export interface ScriptBatcher {
  /** Queues one request's keys and arguments; resolves with its own part of the reply. */
  submit(group: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown>;
}

interface Pending {
  keys: readonly string[];
  args: readonly (string | number)[];
  resolve(reply: unknown): void;
  reject(error: unknown): void;
}

/**
 * Creates a batcher over `run`. Under load a Check arrives with dozens of others in the same socket read; sending
 * them as one script call costs one command's client and server overhead instead of dozens. Requests of different
 * groups (Redis Cluster hash tags) never share a call, since a script's keys must live in one slot. A lone
 * request waits only until the end of the current event-loop turn.
 */
export function createScriptBatcher(run: BatchRunner, maxRequests = 64): ScriptBatcher {
  let queued = new Map<string, Pending[]>();
  let scheduled = false;

  const send = (batch: Pending[]): void => {
    const keys: string[] = [];
    const args: (string | number)[] = [batch.length];
    for (const p of batch) {
      for (const key of p.keys) keys.push(key);
      for (const arg of p.args) args.push(arg);
    }
    let pending: Promise<unknown>;
    try {
      pending = run(keys, args);
    } catch (error) {
      // A client that throws instead of rejecting must not crash the process from a setImmediate callback.
      pending = Promise.reject(error);
    }
    pending.then(
      (reply) => {
        if (!Array.isArray(reply) || reply.length !== batch.length) {
          const error = new Error("rate limiter: malformed script reply");
          for (const p of batch) p.reject(error);
          return;
        }
        for (let i = 0; i < batch.length; i++) batch[i]!.resolve(reply[i]);
      },
      (error: unknown) => {
        for (const p of batch) p.reject(error);
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
    submit(group, keys, args) {
      return new Promise((resolve, reject) => {
        let batch = queued.get(group);
        if (!batch) {
          batch = [];
          queued.set(group, batch);
        }
        batch.push({ keys, args, resolve, reject });
        if (batch.length >= maxRequests) {
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
