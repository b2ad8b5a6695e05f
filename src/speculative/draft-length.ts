// The draft length k of a sequence's next step (0: plain decoding), by one of three policies:
// - fixed: the request named k, or the server is not adaptive;
// - the acceptance rule: k up when nearly everything is accepted, down when most is rejected, speculation paused
//   when even one draft token is usually rejected. It is reproducible (no timing), so seeded sampled requests, whose
//   random draws depend on k, use it;
// - cost-aware: the k with the most expected tokens per second by the kind's CostMemory, plain decoding included,
//   exploring other k now and then; the acceptance rule decides until plain decoding and some k are measured.
// Only steps of a sequence decoding alone are timed (a batch's cost is shared); see docs/design.md, "Choosing k".
import { CostMemory } from './cost-memory.ts';

export interface DraftLengthPolicy {
  /** Draft length for the next step (0 = plain decoding). */
  next(): number;
  /** A verification of `drafted` draft tokens kept `accepted` of them. */
  onVerified(drafted: number, accepted: number): void;
  /** A step of the sequence decoding alone, with `drafted` draft tokens, took `seconds` (start to next start). */
  onStepTimed(drafted: number, seconds: number): void;
}

export function draftLengthPolicy(maxK: number, o: { adaptive?: boolean; costAware?: boolean; costs?: CostMemory } = {}): DraftLengthPolicy {
  if (!(o.adaptive ?? true) || maxK === 0) return new FixedDraftLength(maxK);
  if (!(o.costAware ?? true)) return new AcceptanceRule(maxK);
  return new CostAwareDraftLength(maxK, o.costs ?? new CostMemory());
}

export class FixedDraftLength implements DraftLengthPolicy {
  constructor(private readonly k: number) {}
  next(): number {
    return this.k;
  }
  onVerified(): void {}
  onStepTimed(): void {}
}

// EMA weight of the newest verification: about the last ten matter.
const SMOOTHING = 0.1;
const GROW_ABOVE = 0.8;
const SHRINK_BELOW = 0.5;
const PAUSE_BELOW = 0.25;
// Plain steps between probes once speculation is paused.
const PAUSE_STEPS = 16;

export class AcceptanceRule implements DraftLengthPolicy {
  /** Smoothed share of draft tokens kept (accepted / drafted), which the thresholds act on. */
  keptShare = 0.7;
  private k: number;
  private pausedFor = 0;

  constructor(private readonly maxK: number) {
    this.k = maxK;
  }

  next(): number {
    if (this.pausedFor > 0) {
      this.pausedFor--;
      return 0;
    }
    return this.k;
  }

  onVerified(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    this.keptShare = (1 - SMOOTHING) * this.keptShare + SMOOTHING * (accepted / drafted);
    if (this.keptShare > GROW_ABOVE) this.k = Math.min(this.maxK, this.k + 1);
    else if (this.keptShare < SHRINK_BELOW) this.k = Math.max(1, this.k - 1);
    if (this.k === 1 && this.keptShare < PAUSE_BELOW) {
      this.pausedFor = PAUSE_STEPS;
      this.keptShare = SHRINK_BELOW; // probe afresh after the pause
    }
  }

  onStepTimed(): void {}
}

// Measured steps (of every sequence sharing the memory) before the first plain step is measured; and between
// exploring steps after that: often while the memory is young, then less often. An exploration runs EXPLORE_STEPS in a
// row (one step's time is noisy) and its first step is not recorded (each k runs its own ONNX session, whose caches a
// switch finds cold). Only a k whose expected rate is within EXPLORE_WITHIN of the choice's is explored (a k far from
// paying costs several plain steps), except that a neighbour of the choice, or the runner-up, is re-measured once its
// last measurement is STALE_AFTER steps old, so that a choice made in a slow stretch of the machine gets revisited.
const COST_WARMUP = 4;
const EXPLORE_EVERY_YOUNG = 16;
const YOUNG_STEPS = 128;
const EXPLORE_EVERY = 32;
const EXPLORE_STEPS = 4;
const EXPLORE_WITHIN = 0.85;
const STALE_AFTER = 320;
// A sequence's acceptance decays per verification (over ~30); it starts from its kind's, weighted as this many.
const ACCEPT_DECAY = 0.97;
const PRIOR_WEIGHT = 3;

export class CostAwareDraftLength implements DraftLengthPolicy {
  /** Decides until costs are known. */
  private readonly rule: AcceptanceRule;
  /** A draft length to try for a few steps, and how many are left. */
  private explore: { k: number; left: number } | null = null;
  /** The last choice by measured cost. */
  private chosen: number | null = null;
  private kept = 0;
  private rejected = 0;
  /** The draft length of the last step timed. */
  private lastTimed = -1;

  constructor(private readonly maxK: number, private readonly costs: CostMemory) {
    this.rule = new AcceptanceRule(maxK);
    const prior = costs.tokenAcceptance;
    if (prior !== undefined) {
      this.kept = PRIOR_WEIGHT * prior;
      this.rejected = PRIOR_WEIGHT * (1 - prior);
    }
  }

  /** Per-token acceptance a of this sequence so far (its kind's as a prior): a draft token is kept with probability a
   * given the ones before it were; a verification is one failure at most. */
  get tokenAcceptance(): number {
    return this.kept + this.rejected > 0 ? this.kept / (this.kept + this.rejected) : this.rule.keptShare;
  }

  next(): number {
    if (this.explore) {
      const { k } = this.explore;
      if (--this.explore.left === 0) this.explore = null;
      return k;
    }
    this.chosen = this.costs.best(this.tokenAcceptance, this.maxK) ?? null;
    return this.chosen ?? this.rule.next();
  }

  onVerified(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    const rejected = accepted < drafted ? 1 : 0;
    this.kept = ACCEPT_DECAY * this.kept + accepted;
    this.rejected = ACCEPT_DECAY * this.rejected + rejected;
    this.costs.addAcceptance(accepted, rejected);
    this.rule.onVerified(drafted, accepted);
  }

  onStepTimed(drafted: number, seconds: number): void {
    if (!(seconds > 0)) return;
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
    const a = this.tokenAcceptance;
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
}
