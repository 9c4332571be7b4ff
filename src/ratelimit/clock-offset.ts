/**
 * Estimates how far Redis's clock is ahead of ours, so the client can send each script a deadline in Redis time.
 *
 * Every reply carries Redis's `now`, read while the script ran, which happened after we sent at `sentAtMs`:
 * so `now - sentAtMs` is an upper bound on the offset. The smallest bound seen converges on the true offset
 * without ever undershooting it, so a deadline built from it never refuses a request that ran in time.
 * Bounds age out after two windows so clock drift (NTP slewing) is followed. In a cluster the nodes' clocks
 * differ slightly; a stale refusal that arrives while the client is still waiting proves the estimate too
 * low for that node, and `raise` lifts the estimate for the window so that node stops tripping it.
 */
export class ClockOffset {
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private currentMin = Number.POSITIVE_INFINITY;
  private previousMin = Number.POSITIVE_INFINITY;
  private currentFloor = Number.NEGATIVE_INFINITY;
  private previousFloor = Number.NEGATIVE_INFINITY;

  constructor(private readonly windowMs = 30_000) {}

  /** Records the bound `redisNowMs - sentAtMs` from a reply received at `atMs`. */
  observe(upperBoundMs: number, atMs: number): void {
    this.rotate(atMs);
    this.currentMin = Math.min(this.currentMin, upperBoundMs);
  }

  /** Records a bound that proved the estimate too low (a premature stale refusal). */
  raise(upperBoundMs: number, atMs: number): void {
    this.rotate(atMs);
    this.currentFloor = Math.max(this.currentFloor, upperBoundMs);
  }

  /** The offset to add to our clock to get Redis's, 0 until a reply has been seen. */
  estimate(): number {
    const min = Math.min(this.currentMin, this.previousMin);
    const floor = Math.max(this.currentFloor, this.previousFloor);
    return Math.max(Number.isFinite(min) ? min : 0, floor);
  }

  private rotate(atMs: number): void {
    if (atMs - this.windowStartMs < this.windowMs) return;
    // A gap of two windows or more leaves nothing recent to keep.
    const adjacent = atMs - this.windowStartMs < 2 * this.windowMs;
    this.previousMin = adjacent ? this.currentMin : Number.POSITIVE_INFINITY;
    this.previousFloor = adjacent ? this.currentFloor : Number.NEGATIVE_INFINITY;
    this.currentMin = Number.POSITIVE_INFINITY;
    this.currentFloor = Number.NEGATIVE_INFINITY;
    this.windowStartMs = atMs;
  }
}
