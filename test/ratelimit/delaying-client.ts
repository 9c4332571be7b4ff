import type { Cluster, Redis } from "ioredis";
import { CONSUME_SHA } from "../../src/ratelimit/redis-script.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A real client whose next consume reply, when asked, reaches the limiter `delayMs` late: Redis runs the script (and
 * charges) at once, and only its reply is held back, past the limiter's deadline. `delayNext` resolves once the
 * limiter has been handed that reply (and so has started any refund).
 */
export function delayingClient<C extends Redis | Cluster>(real: C) {
  let delayNextMs = 0;
  let delivered: () => void = () => {};
  const client = new Proxy(real, {
    get(target, prop) {
      if (prop === "evalshaBuffer") {
        return (sha: string, ...args: unknown[]) => {
          const delayMs = sha === CONSUME_SHA ? delayNextMs : 0;
          if (sha === CONSUME_SHA) delayNextMs = 0;
          const reply = (
            target as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
          ).evalshaBuffer!.call(target, sha, ...args);
          if (delayMs === 0) return reply;
          const handOver = delivered;
          return reply.then(async (r) => {
            await sleep(delayMs);
            // After the limiter's own callbacks on this reply, which run first.
            setImmediate(handOver);
            return r;
          });
        };
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return {
    client,
    delayNext(ms: number): Promise<void> {
      delayNextMs = ms;
      return new Promise((resolve) => (delivered = resolve));
    },
  };
}
