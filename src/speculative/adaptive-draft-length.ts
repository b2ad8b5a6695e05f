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

// Each new step's seconds and tokens are added to sums that decay by this factor per step: the cost per token is a
// ratio of sums (a step that emitted 1 token weighs less than one that emitted 5), over roughly the last 20 steps.
const COST_DECAY = 0.95;

/** What speculating and plain decoding cost per emitted token, and the length of the next cost pause. */
export class CostMemory {
  private specSeconds = 0;
  private specTokens = 0;
  private plainSeconds = 0;
  private plainTokens = 0;
  pause = PAUSE_STEPS;
  /** Speculative steps measured since the last verdict, by every sequence sharing this memory. */
  specSteps = 0;

  add(speculated: boolean, seconds: number, tokens: number): void {
    if (speculated) {
      this.specSeconds = COST_DECAY * this.specSeconds + seconds;
      this.specTokens = COST_DECAY * this.specTokens + tokens;
    } else {
      this.plainSeconds = COST_DECAY * this.plainSeconds + seconds;
      this.plainTokens = COST_DECAY * this.plainTokens + tokens;
    }
  }

  /** Speculation measured slower per token than plain decoding (both measured over a few tokens at least). */
  get losing(): boolean {
    if (this.specTokens < 8 || this.plainTokens < 3) return false;
    return this.specSeconds / this.specTokens > (this.plainSeconds / this.plainTokens) * COST_MARGIN;
  }
}

export class AdaptiveDraftLength {
  private rate = 0.7;
  private k: number;
  private pausedFor = 0;
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
   * Report the wall time of a step of a sequence decoding alone, the tokens it emitted, and whether it speculated.
   * Drives the cost comparison; steps of batches are not reported (their cost is shared).
   */
  recordCost(speculated: boolean, seconds: number, tokens: number): void {
    if (!this.adaptive || !this.costAware || this.maxK === 0 || !(seconds > 0) || tokens < 1) return;
    const c = this.costs;
    c.add(speculated, seconds, tokens);
    if (speculated) {
      // Probes are scheduled on the steps of all sequences that share the memory: short requests do not each
      // pay for a warm-up probe.
      c.specSteps++;
      if (c.specSteps === COST_WARMUP || c.specSteps % PROBE_EVERY === 0) this.probeLeft = PROBE_STEPS;
      return;
    }
    if (this.probeLeft > 0 && --this.probeLeft === 0) {
      if (c.losing) {
        this.pausedFor = c.pause;
        c.pause = Math.min(MAX_PAUSE_STEPS, 2 * c.pause);
        c.specSteps = 0;
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
