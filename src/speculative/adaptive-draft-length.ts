// Per-sequence draft length from its running acceptance. With acceptance rate a, a proposal of k tokens yields
// (1 - a^(k+1)) / (1 - a) tokens per target pass (Leviathan et al. 2023, eq. 1); extra drafted tokens pay only while
// a stays high. The controller moves k up when nearly everything is accepted and down when most is rejected, and
// pauses speculation (k = 0, plain decoding) when even one draft token is usually rejected, probing again later.

// EMA weight of the newest step: about the last ten verification passes matter.
const SMOOTHING = 0.1;
// Thresholds on the smoothed per-token acceptance rate.
const GROW_ABOVE = 0.8;
const SHRINK_BELOW = 0.5;
const PAUSE_BELOW = 0.25;
// Plain steps between probes once speculation paused.
const PAUSE_STEPS = 16;

export class AdaptiveDraftLength {
  private rate = 0.7;
  private k: number;
  private pausedFor = 0;

  constructor(private readonly maxK: number, private readonly adaptive = true) {
    this.k = maxK;
  }

  /** Draft length for the next step (0 = plain decoding). */
  next(): number {
    if (!this.adaptive || this.maxK === 0) return this.maxK;
    if (this.pausedFor > 0) {
      this.pausedFor--;
      return 0;
    }
    return this.k;
  }

  /** Report the outcome of a verification with `drafted` proposed and `accepted` kept. */
  record(drafted: number, accepted: number): void {
    if (!this.adaptive || drafted === 0) return;
    this.rate = (1 - SMOOTHING) * this.rate + SMOOTHING * (accepted / drafted);
    if (this.rate > GROW_ABOVE) this.k = Math.min(this.maxK, this.k + 1);
    else if (this.rate < SHRINK_BELOW) this.k = Math.max(1, this.k - 1);
    if (this.k === 1 && this.rate < PAUSE_BELOW) {
      this.pausedFor = PAUSE_STEPS;
      this.rate = SHRINK_BELOW; // probe afresh after the pause
    }
  }

  get acceptanceRate(): number {
    return this.rate;
  }
}
