import type { Bucket, LimitRequest, LimitResult, RateLimiter } from "../domain/ports.js";
import { buildResult, charged, fits, isFrozenBucketList, validateRequest } from "./bucket-math.js";

/** A shared limiter whose tokens can be given back: what leases are taken from. */
export interface LeaseBackend extends RateLimiter {
  /** Credits `amount` tokens to every bucket of `request`, capped at capacity; best effort, never throws. */
  giveBack(request: LimitRequest, amount: number): void;
}

/** How long leases live and how large they may grow. */
export interface LeaseOptions {
  /** How long a lease's tokens may be spent locally before the rest is given back; its size follows demand. */
  leaseMs: number;
  /** Largest lease, as a share of the smallest capacity among the request's buckets (default 0.01). */
  maxFraction?: number;
  /** Smallest lease worth taking (default 16): a key whose demand is below it is charged in the backend per call. */
  minLease?: number;
  /** Monotonic clock in ms; tests inject a fake one. */
  now?: () => number;
}

/** The leasing limiter; `close()` gives every lease back and leaves the backend open for its owner to close. */
export interface LeasingLimiter extends RateLimiter {
  /** Gives back the unspent tokens of every lease idle for a lease time past its own (also run every `leaseMs`). */
  sweep(): void;
}

/** Tokens one bucket list holds in advance, and the demand its next lease is sized by. */
interface Lease {
  readonly tag: string;
  readonly buckets: readonly Bucket[];
  /** 0 when the list's buckets are too small or refill too fast to lease from. */
  readonly maxLease: number;
  /** Tokens held, charged already in every bucket of the list. */
  left: number;
  /** Each bucket's tokens in the backend, as its last reply gave them. */
  base: number[];
  expiresAt: number;
  /** Cost spent through this list since `windowStart`: the demand the next lease is sized by. */
  spent: number;
  windowStart: number;
  /**
   * The request carrying the grant in flight; requests the lease cannot pay wait for it once, and share its failure
   * rather than adding a backend call, and a timeout, of their own.
   */
  granting: Promise<LimitResult> | undefined;
}

/** Demand is measured over at least this long before a lease is sized from it. */
const MIN_WINDOW_MS = 5;

/**
 * Wraps a shared limiter (Redis) so that a busy bucket list is charged there once per lease instead of once per
 * request: the lease is charged in advance, alongside a request that goes to the backend anyway, and spent locally;
 * past `leaseMs` the next request renews it, and a lease no request renews is given back. A request the lease
 * cannot pay is decided by the backend, with the lease's tokens added to what it is asked for, so one instance
 * admits exactly what a single bucket would. Holding tokens has two costs (docs/security.md, "Rate-limit leases"): another
 * instance may be refused what a lease holds, and the backend's bucket keeps refilling while a lease is out, so a
 * holder may admit up to one lease beyond the capacity.
 */
export function createLeasingLimiter(backend: LeaseBackend, options: LeaseOptions): LeasingLimiter {
  const { leaseMs } = options;
  if (!(Number.isFinite(leaseMs) && leaseMs > 0)) throw new RangeError("leaseMs must be > 0");
  const maxFraction = options.maxFraction ?? 0.01;
  const minLease = options.minLease ?? 16;
  const now = options.now ?? (() => performance.now());
  const leases = new WeakMap<readonly Bucket[], Lease>();
  // Leases holding tokens, so that the sweep can give back those of lists no request uses any more.
  const holding = new Set<Lease>();
  let closed = false;

  const largestLease = (buckets: readonly Bucket[]): number => {
    let most = Number.POSITIVE_INFINITY;
    for (const { limit } of buckets) {
      const size = Math.floor(limit.capacity * maxFraction);
      // Counts answered from a lease leave out the refill since its grant: keep that below one lease.
      const refillMs = (size / limit.capacity) * limit.periodSeconds * 1000;
      most = Math.min(most, refillMs >= leaseMs ? size : 0);
    }
    return most >= minLease ? most : 0;
  };

  const leaseFor = (request: LimitRequest, t: number): Lease | undefined => {
    const found = leases.get(request.buckets);
    if (found) return found.tag === request.tag && found.maxLease > 0 ? found : undefined;
    // Only a list that cannot change may carry state from one request to the next.
    if (!isFrozenBucketList(request.buckets)) return undefined;
    const lease: Lease = {
      tag: request.tag,
      buckets: request.buckets,
      maxLease: largestLease(request.buckets),
      left: 0,
      base: [],
      expiresAt: 0,
      spent: 0,
      windowStart: t,
      granting: undefined,
    };
    leases.set(request.buckets, lease);
    return lease.maxLease > 0 ? lease : undefined;
  };

  const release = (lease: Lease): void => {
    holding.delete(lease);
    if (lease.left <= 0) return;
    const amount = lease.left;
    lease.left = 0;
    backend.giveBack({ tag: lease.tag, buckets: lease.buckets, cost: 0 }, amount);
  };

  // Sized to last one lease at the demand seen since the last one, within the cap and what the backend last had.
  const wanted = (lease: Lease, t: number, need: number): number => {
    const elapsed = t - lease.windowStart;
    if (lease.granting || elapsed < MIN_WINDOW_MS) return 0;
    let want = Math.min(lease.maxLease, Math.ceil((lease.spent / elapsed) * leaseMs));
    for (const tokens of lease.base) want = Math.min(want, Math.floor(tokens - need));
    lease.windowStart = t;
    lease.spent = 0;
    return want >= minLease ? want : 0;
  };

  // The request's buckets as this instance sees them: the backend's tokens plus what the lease holds.
  const report = (request: LimitRequest, allowed: boolean, lease: Lease, extra: number): LimitResult => {
    const tokens: number[] = [];
    for (let i = 0; i < lease.base.length; i++) tokens.push(lease.base[i]! + extra);
    return buildResult(request, allowed, tokens, Date.now());
  };

  const learn = (lease: Lease, result: LimitResult): void => {
    const base: number[] = [];
    for (const status of result.statuses) base.push(status.remaining);
    lease.base = base;
  };

  const spend = (request: LimitRequest, lease: Lease, t: number, waited: boolean): Promise<LimitResult> => {
    if (lease.left > 0 && fits(lease.left, request.cost)) {
      lease.left = charged(lease.left, request.cost);
      return Promise.resolve(report(request, true, lease, lease.left));
    }
    // A grant on its way will likely pay this too: waiting for it costs less than a call of its own. Only once, so
    // that a herd larger than the grant waits at most one more round trip.
    if (lease.granting && !waited) return lease.granting.then(() => spend(request, lease, now(), true));
    return viaBackend(request, lease, wanted(lease, t, request.cost - lease.left));
  };

  // A busy list's lease past its time is renewed, not given back: the next lease is charged net of what is left,
  // so giving back (a script call and a marker key in Redis) is left to leases that fall idle.
  const renew = (request: LimitRequest, lease: Lease, t: number): Promise<LimitResult> => {
    const want = wanted(lease, t, request.cost - lease.left);
    if (want === 0) {
      release(lease);
      return viaBackend(request, lease, 0);
    }
    if (lease.left >= request.cost + want) {
      lease.left -= request.cost;
      lease.expiresAt = t + leaseMs;
      return Promise.resolve(report(request, true, lease, lease.left));
    }
    return viaBackend(request, lease, want);
  };

  const viaBackend = (request: LimitRequest, lease: Lease, want: number): Promise<LimitResult> => {
    // The lease's tokens pay part of the cost (all of it, when renewing); they are taken now so that no other
    // request spends them meanwhile.
    const held = lease.left;
    lease.left = 0;
    const need = request.cost - held;
    const ask = (extra: number) =>
      backend.consume({ tag: request.tag, buckets: request.buckets, cost: need + extra });
    const restore = () => {
      lease.left += held;
      if (lease.left > 0) holding.add(lease);
    };
    const settle = (result: LimitResult, granted: number): LimitResult => {
      learn(lease, result);
      if (!result.allowed) {
        restore();
        // Another request's grant may have landed meanwhile: its tokens pay as they would in the one bucket.
        if (!fits(lease.left, request.cost)) return report(request, false, lease, lease.left);
        lease.left = charged(lease.left, request.cost);
        return report(request, true, lease, lease.left);
      }
      if (granted > 0) {
        lease.left += granted;
        lease.expiresAt = now() + leaseMs;
        holding.add(lease);
        // Closed while the grant was on its way: nothing may be held past close.
        if (closed) release(lease);
      }
      return report(request, true, lease, lease.left);
    };
    const failed = (error: unknown): never => {
      restore();
      throw error;
    };
    const answer = ask(want).then(
      (result) => {
        if (want > 0) lease.granting = undefined;
        // Refused with the lease added, but every bucket holds what the request alone needs: ask for that. (A
        // request its own lease pays is answered from it by settle.)
        if (!result.allowed && want > 0 && need > 0 && result.statuses.every((s) => fits(s.remaining, need)))
          return ask(0).then((again) => settle(again, 0), failed);
        if (!result.allowed) return settle(result, 0);
        return settle(result, want);
      },
      (error: unknown) => {
        if (want > 0) lease.granting = undefined;
        return failed(error);
      },
    );
    if (want > 0) lease.granting = answer;
    return answer;
  };

  const timer = setInterval(() => sweepExpired(), leaseMs);
  timer.unref();
  function sweepExpired(): void {
    const t = now();
    // A whole lease time past its own and no request has come to renew it: the lease is idle.
    for (const lease of holding) if (t >= lease.expiresAt + leaseMs) release(lease);
  }

  return {
    consume(request) {
      try {
        validateRequest(request);
      } catch (error) {
        return Promise.reject(error);
      }
      const t = now();
      const lease = closed || request.buckets.length === 0 ? undefined : leaseFor(request, t);
      if (!lease) return backend.consume(request);
      lease.spent += request.cost;
      if (t >= lease.expiresAt && lease.left > 0 && !lease.granting) return renew(request, lease, t);
      return spend(request, lease, t, false);
    },
    sweep: sweepExpired,
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      for (const lease of holding) release(lease);
    },
  };
}
