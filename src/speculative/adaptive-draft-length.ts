// Per-sequence draft length from its running acceptance. With acceptance rate a, a proposal of k tokens yields
// (1 - a^(k+1)) / (1 - a) tokens per target pass (Leviathan et al. 2023, eq. 1); extra drafted tokens pay only while
// a stays high. The controller moves k up when nearly everything is accepted and down when most is rejected, and
// pauses speculation (k = 0, plain decoding) when even one draft token is usually rejected, probing again later.
//
// Acceptance alone does not say whether speculation pays: that depends on what a draft and a verify pass cost against
// a plain step (on a tiny model with sampling, 50% acceptance measured 0.7-0.9x plain speed). So where the engine
// reports step times (a sequence decoding alone), the controller also compares seconds per emitted token: every
// PROBE_EVERY speculative steps it decodes PROBE_STEPS plainly to measure a plain step, and if speculating was slower
// per token it pauses, for twice as long each time in a row that it was (from PAUSE_STEPS up to MAX_PAUSE_STEPS),
// before trying again. The measurements live in a CostMemory that the engine shares between sequences of the same
// kind (greedy or sampled), so that a short request starts from what earlier ones learned: paused, if speculation
// was found slower.

// EMA weight of the newest step: about the last ten verification passes matter.
const SMOOTHING = 0.1;
// Thresholds on the smoothed per-token acceptance rate.
const GROW_ABOVE = 0.8;
const SHRINK_BELOW = 0.5;
const PAUSE_BELOW = 0.25;
// Plain steps between probes once speculation paused.
const PAUSE_STEPS = 16;
// Cost comparison: speculative steps between plain probes (the first after COST_WARMUP), probe length, and the
// margin speculation must beat plain decoding by.
const COST_WARMUP = 8;
const PROBE_EVERY = 48;
const PROBE_STEPS = 4;
const COST_MARGIN = 1.03;
const MAX_PAUSE_STEPS = 256;

/** What speculating and plain decoding cost per emitted token (EMA seconds, NaN until measured), and the length of
 * the next cost pause. */
export class CostMemory {
  spec = NaN;
  plain = NaN;
  pause = PAUSE_STEPS;

  /** Speculation measured slower than plain decoding. */
  get losing(): boolean {
    return this.spec > this.plain * COST_MARGIN;
  }
}

export class AdaptiveDraftLength {
  private rate = 0.7;
  private k: number;
  private pausedFor = 0;
  private specSteps = 0;
  private probeLeft = 0;

  private readonly costAware: boolean;
  private readonly costs: CostMemory;

  /** `costAware: false` ignores recordCost (choices then depend on acceptance only, reproducibly). `costs`: shared
   * with other sequences (default: this sequence's own). */
  constructor(private readonly maxK: number, private readonly adaptive = true, o: { costAware?: boolean; costs?: CostMemory } = {}) {
    this.k = maxK;
    this.costAware = o.costAware ?? true;
    this.costs = o.costs ?? new CostMemory();
    if (this.costAware && this.adaptive && this.costs.losing) this.pausedFor = this.costs.pause;
  }

  /** Draft length for the next step (0 = plain decoding). */
  next(): number {
    if (!this.adaptive || this.maxK === 0) return this.maxK;
    if (this.pausedFor > 0) {
      this.pausedFor--;
      return 0;
    }
    if (this.probeLeft > 0) return 0;
    return this.k;
  }

  /**
   * Report the wall time of a step of a sequence decoding alone, per token it emitted, and whether it speculated.
   * Drives the cost comparison; steps of batches are not reported (their cost is shared).
   */
  recordCost(speculated: boolean, secondsPerToken: number): void {
    if (!this.adaptive || !this.costAware || this.maxK === 0 || !(secondsPerToken > 0)) return;
    const ema = (old: number) => (Number.isNaN(old) ? secondsPerToken : (1 - 2 * SMOOTHING) * old + 2 * SMOOTHING * secondsPerToken);
    const c = this.costs;
    if (speculated) {
      c.spec = ema(c.spec);
      this.specSteps++;
      if (this.specSteps === COST_WARMUP || this.specSteps % PROBE_EVERY === 0) this.probeLeft = PROBE_STEPS;
      return;
    }
    c.plain = ema(c.plain);
    if (this.probeLeft > 0 && --this.probeLeft === 0) {
      if (c.losing) {
        this.pausedFor = c.pause;
        c.pause = Math.min(MAX_PAUSE_STEPS, 2 * c.pause);
        this.specSteps = 0;
      } else {
        c.pause = PAUSE_STEPS;
      }
    }
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
