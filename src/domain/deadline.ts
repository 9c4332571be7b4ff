/**
 * Deadlines for the Check hot path without a timer per request. Every Check arms the same few delays (the
 * check deadline, the Redis timeout), so deadlines with one delay expire in the order they were armed: one FIFO
 * queue and one timer per distinct delay replace a setTimeout/clearTimeout pair (and a Promise.race) per call.
 */

/** A pending deadline; `cancel` stops its callback from running (cheap: the slot is skipped when due). */
export interface Deadline {
  cancel(): void;
}

class Slot implements Deadline {
  constructor(
    readonly at: number,
    public fire: (() => void) | undefined,
  ) {}

  cancel(): void {
    this.fire = undefined;
  }
}

class FixedDelayQueue {
  private slots: Slot[] = [];
  private head = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When the armed timer is due; a late or clock-skewed wake-up still expires what it was armed for. */
  private dueAt = 0;

  constructor(private readonly delayMs: number) {}

  add(fire: () => void): Deadline {
    const slot = new Slot(Date.now() + this.delayMs, fire);
    this.slots.push(slot);
    if (!this.timer) this.arm();
    return slot;
  }

  private arm(): void {
    const next = this.slots[this.head]!;
    this.dueAt = next.at;
    this.timer = setTimeout(this.tick, Math.max(1, next.at - Date.now()));
    // Cancelled slots stay queued until due; they must not keep a finished process alive.
    this.timer.unref();
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    const now = Math.max(Date.now(), this.dueAt);
    const { slots } = this;
    while (this.head < slots.length && slots[this.head]!.at <= now) {
      const slot = slots[this.head]!;
      slots[this.head++] = undefined as unknown as Slot;
      const fire = slot.fire;
      slot.fire = undefined;
      fire?.();
    }
    if (this.head === slots.length) {
      this.slots = [];
      this.head = 0;
      return;
    }
    // Drop the consumed prefix now and then, so the array does not grow without bound under steady load.
    if (this.head > 1024 && this.head * 2 > slots.length) {
      this.slots = slots.slice(this.head);
      this.head = 0;
    }
    this.arm();
  };
}

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
