// Per-sequence draft length k (0 = plain decoding).
//
// With per-token acceptance a (a draft token is kept with probability a, given the ones before it were), a proposal
// of k tokens emits E(k) = (1 - a^(k+1)) / (1 - a) tokens per target pass (Leviathan et al. 2023, eq. 1). What a
// step costs depends on k in ways only measurement knows: on stories260K each draft token adds ~90 us to a fused
// step (a chain step and a verified position) and ~150 us or more drafting one pass per token, and a verify pass
// costs little more than a plain step on a memory-bound model but much more in a full batch. So where the engine
// reports step times (a sequence decoding alone), the controller keeps the measured seconds per step for each k and
// takes the k with the most expected tokens per second, E(k) / cost(k), plain decoding included.
//
// Every EXPLORE_EVERY steps (more often while the measurements are young) it spends EXPLORE_STEPS steps in a row
// (one step's time is noisy) on another k that might do better (the first step after a change of k is not recorded:
// each k runs its own ONNX session, and the first run after a switch finds the caches cold): of those whose expected
// rate is within EXPLORE_WITHIN of the best (for a k never measured, its cost interpolated between measured ones),
// the one measured longest ago. A k far from paying is not explored (with sampled drafts at k = 8 a step costs several
// plain ones), except that a neighbour of the choice, or the runner-up, is re-measured once its last measurement is
// STALE_AFTER steps old, so that a choice made in a slow stretch of the machine gets revisited; measurements expire
// after EXPIRE_AFTER steps.
//
// Costs live in a CostMemory that the engine shares between the sequences of one kind (greedy or sampled), so that a
// short request starts from what earlier ones measured. Acceptance is each sequence's own (it depends on the text),
// started from its kind's.
//
// Until plain decoding and some k have been measured, and for sequences whose choices must not depend on timing
// (seeded sampled requests: their random draws depend on k), k follows acceptance alone: up when nearly everything is
// accepted, down when most is rejected, paused when even one draft token is usually rejected.

// EMA weight of the newest step for the acceptance thresholds: about the last ten verification passes matter.
const SMOOTHING = 0.1;
const GROW_ABOVE = 0.8;
const SHRINK_BELOW = 0.5;
const PAUSE_BELOW = 0.25;
// Plain steps between probes once the acceptance rule paused speculation.
const PAUSE_STEPS = 16;

// Steps a fresh memory does not record (the first steps of a process run cold code: JIT, allocator, caches, and
// measured several times slower, they made speculation look hopeless for hundreds of steps over HTTP); measured steps
// (of every sequence sharing a memory) before the first plain step is measured; and between exploring steps after
// that: often while the memory is young, then less often.
const IGNORE_FIRST = 8;
const COST_WARMUP = 4;
const EXPLORE_EVERY_YOUNG = 16;
const YOUNG_STEPS = 128;
const EXPLORE_EVERY = 32;
const EXPLORE_STEPS = 4;
const EXPLORE_WITHIN = 0.85;
const STALE_AFTER = 320;
// A measurement older than this many steps no longer counts (the k counts as never measured: its cost is estimated
// again, and exploring it becomes possible), so that a change of the machine's speed does not pin old choices.
const EXPIRE_AFTER = 1280;
// Per-k step costs are means whose measurements lose weight with age, counted in measured steps of any k (half-life
// ~35 steps): the k in use is a mean over its last ~50 steps, and one that is only explored now and then does not keep
// a stale cost for long.
const COST_DECAY = 0.98;
// Acceptance (successes and failures of draft tokens) decays per verification (a sequence's over ~30, its kind's over
// ~50); a sequence starts from its kind's acceptance weighted as this many verifications.
const ACCEPT_DECAY = 0.97;
const SHARED_ACCEPT_DECAY = 0.98;
const PRIOR_WEIGHT = 3;
// A choice of speculation must beat plain decoding's expected rate by this margin (noise on a shared machine).
const COST_MARGIN = 1.03;

/** Expected tokens per target pass for k draft tokens at per-token acceptance a. */
export function expectedTokens(a: number, k: number): number {
  const p = Math.min(Math.max(a, 0), 0.99);
  return (1 - p ** (k + 1)) / (1 - p);
}

/** Measured seconds per step for each draft length, and acceptance, shared by the sequences of one kind. */
export class CostMemory {
  private readonly seconds: number[] = [];
  private readonly weight: number[] = [];
  private readonly measuredAt: number[] = [];
  /** Steps measured so far, over every k. */
  steps = 0;
  /** Steps offered, the ignored first ones included. */
  private offered = 0;
  private kept = 0;
  private rejected = 0;

  /** Records a step's cost; false while the memory is ignoring its first steps. */
  add(k: number, seconds: number): boolean {
    if (++this.offered <= IGNORE_FIRST) return false;
    // A step caught by a garbage collection or a scheduling hiccup counts as twice the usual cost at most.
    const usual = this.cost(k);
    if (usual !== undefined) seconds = Math.min(seconds, 2 * usual);
    this.steps++;
    const age = COST_DECAY ** (this.steps - (this.measuredAt[k] ?? this.steps));
    this.seconds[k] = age * (this.seconds[k] ?? 0) + seconds;
    this.weight[k] = age * (this.weight[k] ?? 0) + 1;
    this.measuredAt[k] = this.steps;
    return true;
  }

  /** Mean seconds per step with k draft tokens, or undefined if never measured (or not for EXPIRE_AFTER steps). */
  cost(k: number): number | undefined {
    if (!this.weight[k] || this.steps - this.measuredAt[k] > EXPIRE_AFTER) return undefined;
    return this.seconds[k] / this.weight[k];
  }

  /** The step at which k was last measured (0: never). */
  lastMeasured(k: number): number {
    return this.measuredAt[k] ?? 0;
  }

  addAcceptance(kept: number, rejected: number): void {
    this.kept = SHARED_ACCEPT_DECAY * this.kept + kept;
    this.rejected = SHARED_ACCEPT_DECAY * this.rejected + rejected;
  }

  /** Per-token acceptance of the kind, or undefined before any verification. */
  get acceptance(): number | undefined {
    return this.kept + this.rejected > 0 ? this.kept / (this.kept + this.rejected) : undefined;
  }

  /** Seconds per step at k: measured, else interpolated linearly between the nearest measured lengths below and
   * above (extrapolated from the two largest speculative ones when none is above, or the largest's cost if it is the
   * only one); undefined until plain decoding and some k > 0 are measured. */
  estimate(k: number, maxK: number): number | undefined {
    const measured = this.cost(k);
    if (measured !== undefined) return measured;
    const known: number[] = [];
    for (let j = 0; j <= maxK; j++) if (this.cost(j) !== undefined) known.push(j);
    if (known.length < 2 || known[0] !== 0) return undefined;
    let lo = known[0];
    let hi = known[known.length - 1];
    for (const j of known) {
      if (j < k) lo = j;
      else if (j > k) {
        hi = j;
        break;
      }
    }
    if (hi < k) {
      // Beyond the largest: extrapolate from the two largest speculative lengths. With only one measured, assume k
      // costs what it costs (optimism, so that k gets measured): plain decoding and one draft length say nothing of
      // the cost per draft token, and a line through them (a fused step's fixed cost taken as a per-token one) made
      // every longer k look hopeless, so it was never tried.
      const speculative = known.filter((j) => j > 0);
      if (speculative.length < 2) return this.cost(hi);
      [lo, hi] = speculative.slice(-2);
    }
    const cl = this.cost(lo)!;
    const ch = this.cost(hi)!;
    return Math.max(cl, ch) > 0 ? cl + ((ch - cl) * (k - lo)) / (hi - lo) : undefined;
  }

  /** Expected tokens per second at k (estimated cost where k was never measured). */
  rate(a: number, k: number, maxK: number): number | undefined {
    const c = this.estimate(k, maxK);
    return c === undefined ? undefined : (k === 0 ? COST_MARGIN : expectedTokens(a, k)) / c;
  }

  /** The k in 0..maxK with the most expected tokens per second at acceptance a, among measured ones (plain decoding
   * counts with the margin speculation must beat); undefined until plain decoding and some k > 0 are measured. */
  best(a: number, maxK: number): number | undefined {
    if (this.cost(0) === undefined) return undefined;
    let best: number | undefined;
    let bestRate = 0;
    let speculative = false;
    for (let k = 0; k <= maxK; k++) {
      if (this.cost(k) === undefined) continue;
      speculative ||= k > 0;
      const rate = this.rate(a, k, maxK)!;
      if (rate > bestRate) {
        best = k;
        bestRate = rate;
      }
    }
    return speculative ? best : undefined;
  }
}

export class AdaptiveDraftLength {
  private rate = 0.7;
  private k: number;
  private pausedFor = 0;
  /** A draft length to try for a few steps, and how many are left. */
  private explore: { k: number; left: number } | null = null;
  /** The last choice by measured cost. */
  private chosen: number | null = null;
  private kept = 0;
  private rejected = 0;
  /** The draft length of the last step reported to recordCost. */
  private lastTimed = -1;

  private readonly costAware: boolean;
  private readonly costs: CostMemory;

  /** `costAware: false` ignores recordCost (choices then depend on acceptance only, reproducibly). `costs`: shared
   * with other sequences (default: this sequence's own). */
  constructor(private readonly maxK: number, private readonly adaptive = true, o: { costAware?: boolean; costs?: CostMemory } = {}) {
    this.k = maxK;
    this.costAware = o.costAware ?? true;
    this.costs = o.costs ?? new CostMemory();
    const prior = this.costs.acceptance;
    if (prior !== undefined) {
      this.kept = PRIOR_WEIGHT * prior;
      this.rejected = PRIOR_WEIGHT * (1 - prior);
    }
  }

  /** Per-token acceptance of this sequence so far (with its kind's as a prior). */
  get acceptance(): number {
    return this.kept + this.rejected > 0 ? this.kept / (this.kept + this.rejected) : this.rate;
  }

  /** Draft length for the next step (0 = plain decoding). */
  next(): number {
    if (!this.adaptive || this.maxK === 0) return this.maxK;
    if (this.explore) {
      const { k } = this.explore;
      if (--this.explore.left === 0) this.explore = null;
      return k;
    }
    if (this.costAware) {
      this.chosen = this.costs.best(this.acceptance, this.maxK) ?? null;
      if (this.chosen !== null) return this.chosen;
    }
    if (this.pausedFor > 0) {
      this.pausedFor--;
      return 0;
    }
    return this.k;
  }

  /**
   * Report the wall time of a step of a sequence decoding alone, with `drafted` draft tokens (0: a plain step).
   * Drives the cost-based choice; steps of batches are not reported (their cost is shared).
   */
  recordCost(drafted: number, seconds: number): void {
    if (!this.adaptive || !this.costAware || this.maxK === 0 || !(seconds > 0)) return;
    const switched = drafted !== this.lastTimed;
    this.lastTimed = drafted;
    const c = this.costs;
    if (switched || !c.add(drafted, seconds) || this.explore) return;
    if (c.cost(0) === undefined) {
      if (c.steps >= COST_WARMUP) this.explore = { k: 0, left: EXPLORE_STEPS };
    } else if (c.steps % (c.steps < YOUNG_STEPS ? EXPLORE_EVERY_YOUNG : EXPLORE_EVERY) === 0) {
      const k = this.explorationTarget(this.chosen ?? drafted);
      if (k !== null) this.explore = { k, left: EXPLORE_STEPS };
    }
  }

  /** The k to explore next, or null: among the others whose expected rate is within EXPLORE_WITHIN of the choice's,
   * the one measured longest ago (never measured first); failing that, a neighbour of the choice or the runner-up,
   * whichever was measured longest ago, once that is STALE_AFTER steps. */
  private explorationTarget(choice: number): number | null {
    const c = this.costs;
    const a = this.acceptance;
    const bar = EXPLORE_WITHIN * (c.rate(a, choice, this.maxK) ?? 0);
    let target: number | null = null;
    for (let k = 0; k <= this.maxK; k++) {
      if (k === choice || (c.rate(a, k, this.maxK) ?? Infinity) < bar) continue;
      if (target === null || c.lastMeasured(k) < c.lastMeasured(target)) target = k;
    }
    if (target !== null) return target;
    // Stale candidates: the choice's neighbours, and the runner-up (a k measured in a slow stretch of the machine can
    // look far worse than it is, and would otherwise wait for its measurement to expire).
    const candidates = [choice - 1, choice + 1].filter((k) => k >= 0 && k <= this.maxK);
    let runnerUp: number | null = null;
    for (let k = 0; k <= this.maxK; k++) {
      if (k !== choice && c.cost(k) !== undefined && (runnerUp === null || c.rate(a, k, this.maxK)! > c.rate(a, runnerUp, this.maxK)!)) runnerUp = k;
    }
    if (runnerUp !== null && !candidates.includes(runnerUp)) candidates.push(runnerUp);
    const stalest = candidates.reduce((x, y) => (c.lastMeasured(y) < c.lastMeasured(x) ? y : x), candidates[0]);
    return stalest !== undefined && c.steps - c.lastMeasured(stalest) >= STALE_AFTER ? stalest : null;
  }

  /** Report the outcome of a verification with `drafted` proposed and `accepted` kept. */
  record(drafted: number, accepted: number): void {
    if (!this.adaptive || drafted === 0) return;
    const rejected = accepted < drafted ? 1 : 0;
    this.kept = ACCEPT_DECAY * this.kept + accepted;
    this.rejected = ACCEPT_DECAY * this.rejected + rejected;
    if (this.costAware) this.costs.addAcceptance(accepted, rejected);
    this.rate = (1 - SMOOTHING) * this.rate + SMOOTHING * (accepted / drafted);
    if (this.rate > GROW_ABOVE) this.k = Math.min(this.maxK, this.k + 1);
    else if (this.rate < SHRINK_BELOW) this.k = Math.max(1, this.k - 1);
    if (this.k === 1 && this.rate < PAUSE_BELOW) {
      this.pausedFor = PAUSE_STEPS;
      this.rate = SHRINK_BELOW; // probe afresh after the pause
    }
  }

  /** Smoothed accepted / drafted, which the acceptance thresholds act on. */
  get acceptanceRate(): number {
    return this.rate;
  }
}
