/**
 * Deadlines for the Check hot path without a timer per request. Every Check arms the same few delays (the
 * check deadline, the Redis timeout), so deadlines with one delay expire in the order they were armed: one FIFO
 * of ticks and one timer per distinct delay replace a setTimeout/clearTimeout pair (and a Promise.race) per call.
 *
 * Nearly every deadline is cancelled within a millisecond or two, so nothing of one call is kept until it is due:
 * the queue holds one tick per millisecond and a cancel removes the call's callback from its tick, so no per-call
 * object outlives the young generation.
 */

/** A pending deadline; `cancel` stops its callback from running. */
export interface Deadline {
  cancel(): void;
}

/** The callbacks due at one millisecond, by an id unique within the queue. */
class Tick {
  readonly due = new Map<number, () => void>();
  constructor(readonly at: number) {}
}

/** Lives only as long as its caller holds it; the tick keeps the callback, not this. */
class Armed implements Deadline {
  constructor(
    private readonly tick: Tick,
    private readonly id: number,
  ) {}

  cancel(): void {
    this.tick.due.delete(this.id);
  }
}

class FixedDelayQueue {
  private ticks: Tick[] = [];
  private head = 0;
  private nextId = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer is due; a late or clock-skewed wake-up still expires what it was armed for. */
  private dueAt = 0;
  /** True while a late expiry waits for the event loop's poll phase. */
  private deferred = false;

  constructor(private readonly delayMs: number) {}

  add(fire: () => void): Deadline {
    const at = Date.now() + this.delayMs;
    let tick = this.head < this.ticks.length ? this.ticks[this.ticks.length - 1] : undefined;
    // A clock that stepped back joins the last tick rather than breaking the queue's order.
    if (!tick || tick.at < at) {
      tick = new Tick(at);
      this.ticks.push(tick);
    }
    const id = this.nextId++;
    // Ids only need to be unique among pending calls; wrap well before they stop being small integers.
    if (this.nextId === 0x3fffffff) this.nextId = 0;
    tick.due.set(id, fire);
    if (!this.timer) this.arm();
    return new Armed(tick, id);
  }

  private arm(): void {
    const next = this.ticks[this.head]!;
    this.dueAt = next.at;
    this.timer = setTimeout(this.expire, Math.max(1, next.at - Date.now()));
    // Pending deadlines must not keep a finished process alive.
    this.timer.unref();
  }

  private readonly expire = (): void => {
    // Woken late, the process was stalled (a long garbage collection, a busy machine), and answers that arrived
    // meanwhile wait unread in their sockets: timers run before I/O in each turn of the event loop. Expiring after
    // the poll phase lets those answers cancel their deadlines first, instead of being beaten by our own stall.
    if (!this.deferred && Date.now() - this.dueAt > STALL_MS) {
      this.deferred = true;
      setImmediate(this.expire);
      return;
    }
    this.deferred = false;
    this.timer = undefined;
    const now = Math.max(Date.now(), this.dueAt);
    const { ticks } = this;
    while (this.head < ticks.length && ticks[this.head]!.at <= now) {
      const tick = ticks[this.head]!;
      ticks[this.head++] = undefined as unknown as Tick;
      for (const fire of tick.due.values()) fire();
      tick.due.clear();
    }
    if (this.head === ticks.length) {
      this.ticks = [];
      this.head = 0;
      return;
    }
    // Drop the consumed prefix now and then, so the array does not grow without bound under steady load.
    if (this.head > 1024 && this.head * 2 > ticks.length) {
      this.ticks = ticks.slice(this.head);
      this.head = 0;
    }
    this.arm();
  };
}

/** A timer this late means the event loop was blocked, not merely busy. */
const STALL_MS = 5;

const queues = new Map<number, FixedDelayQueue>();
/** Callers' deadlines can shorten a delay to any value; past this many distinct delays, plain timers are used. */
const MAX_QUEUES = 256;

/** Runs `fire` after `ms` milliseconds (like setTimeout), unless cancelled first. */
export function after(ms: number, fire: () => void): Deadline {
  let queue = queues.get(ms);
  if (!queue) {
    if (queues.size >= MAX_QUEUES) {
      const timer = setTimeout(fire, ms);
      return { cancel: () => clearTimeout(timer) };
    }
    queue = new FixedDelayQueue(ms);
    queues.set(ms, queue);
  }
  return queue.add(fire);
}

/**
 * Settles like `promise` unless `ms` pass first, then with `onTimeout()` (a throw rejects). A rejection of `promise`
 * settles with `onError(error)` when given (it must not throw), else passes through. The deadline is cancelled
 * either way, and whichever comes second is ignored. One promise and a queued deadline, not Promise.race over a
 * per-call setTimeout: this runs per Check.
 */
export function settleWithin<T>(
  promise: PromiseLike<T>,
  ms: number,
  onTimeout: () => T,
  onError?: (error: unknown) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const deadline = after(ms, () => {
      try {
        resolve(onTimeout());
      } catch (error) {
        reject(error);
      }
    });
    promise.then(
      (value) => {
        deadline.cancel();
        resolve(value);
      },
      (error: unknown) => {
        deadline.cancel();
        if (onError) resolve(onError(error));
        else reject(error);
      },
    );
  });
}
