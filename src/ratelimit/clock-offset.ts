/**
 * Estimates how far Redis's clock is ahead of ours, so the client can send each script a deadline in Redis time.
 *
 * Every reply carries Redis's `now`, read while the script ran, which happened before we read the reply at
 * `receivedAtMs`: so `now - receivedAtMs` is a lower bound on the offset (one millisecond lower still, as Date.now()
 * drops the fraction Redis keeps). The largest bound seen converges on the true offset without ever overshooting it,
 * so a deadline built from it never lets a script charge after the client has given up. Bounds age out after two
 * windows so clock drift (NTP slewing) is followed. In a cluster the nodes' clocks differ slightly: the largest
 * bound follows the node furthest ahead, which makes deadlines a little late for the others; the client refunds any
 * charge whose reply arrives after it gave up, so a late deadline costs a refund, never a wrong count.
 */
export class ClockOffset {
  private windowStartMs = Number.NEGATIVE_INFINITY;
  private currentMax = Number.NEGATIVE_INFINITY;
  private previousMax = Number.NEGATIVE_INFINITY;

  constructor(private readonly windowMs = 30_000) {}

  /** Records what a reply read at `receivedAtMs` says: Redis's clock read `redisNowMs` before then. */
  observe(redisNowMs: number, receivedAtMs: number): void {
    this.rotate(receivedAtMs);
    this.currentMax = Math.max(this.currentMax, redisNowMs - receivedAtMs - 1);
  }

  /** The offset to add to our clock to get Redis's, never above the true one; 0 until a reply has been seen. */
  estimate(): number {
    const max = Math.max(this.currentMax, this.previousMax);
    return Number.isFinite(max) ? max : 0;
  }

  private rotate(atMs: number): void {
    if (atMs - this.windowStartMs < this.windowMs) return;
    // A gap of two windows or more leaves nothing recent to keep.
    const adjacent = atMs - this.windowStartMs < 2 * this.windowMs;
    this.previousMax = adjacent ? this.currentMax : Number.NEGATIVE_INFINITY;
    this.currentMax = Number.NEGATIVE_INFINITY;
    this.windowStartMs = atMs;
  }
}
