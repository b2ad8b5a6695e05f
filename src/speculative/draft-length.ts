// A sequence's draft length k (0: plain decoding), by one of three policies (docs/design.md, "Choosing k"):
// - fixed: the request named k, or the server is not adaptive;
// - the acceptance rule: k up when nearly everything is accepted, down when most is rejected, speculation paused
//   when even one draft token is usually rejected. It is reproducible (no timing, no load), so seeded sampled
//   requests, whose random draws depend on k, use it;
// - batched (the default): k is chosen for the whole batch by the goodput policy (goodput.ts) from each sequence's
//   acceptance, which is kept here; the acceptance rule stands in until the batch's costs are known.
import type { AcceptanceMemory } from './cost-memory.ts';

export interface DraftLengthPolicy {
  /** k is chosen with the rest of the batch (goodput.ts); next() is then the stand-in until costs are known. */
  readonly batched: boolean;
  /** Draft length for the next step (0 = plain decoding). */
  next(): number;
  /** A verification of `drafted` draft tokens kept `accepted` of them. */
  onVerified(drafted: number, accepted: number): void;
  /** Per-token acceptance a of the sequence so far: a draft token is kept with probability a given the ones before it
   * were. */
  readonly tokenAcceptance: number;
}

export function draftLengthPolicy(maxK: number, o: { adaptive?: boolean; reproducible?: boolean; prior?: AcceptanceMemory } = {}): DraftLengthPolicy {
  if (!(o.adaptive ?? true) || maxK === 0) return new FixedDraftLength(maxK);
  if (o.reproducible) return new AcceptanceRule(maxK);
  return new BatchedDraftLength(maxK, o.prior);
}

export class FixedDraftLength implements DraftLengthPolicy {
  readonly batched = false;
  readonly tokenAcceptance = 0;
  constructor(private readonly k: number) {}
  next(): number {
    return this.k;
  }
  onVerified(): void {}
}

// EMA weight of the newest verification: about the last ten matter.
const SMOOTHING = 0.1;
const GROW_ABOVE = 0.8;
const SHRINK_BELOW = 0.5;
const PAUSE_BELOW = 0.25;
// Plain steps between probes once speculation is paused.
const PAUSE_STEPS = 16;

export class AcceptanceRule implements DraftLengthPolicy {
  readonly batched: boolean = false;
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

  get tokenAcceptance(): number {
    return this.keptShare;
  }
}

// A sequence's acceptance decays per verification (over ~30); it starts from its kind's, weighted as this many.
const ACCEPT_DECAY = 0.97;
const PRIOR_WEIGHT = 3;

export class BatchedDraftLength implements DraftLengthPolicy {
  readonly batched = true;
  /** Stands in until the batch's costs are known. */
  private readonly rule: AcceptanceRule;
  private kept = 0;
  private rejected = 0;

  constructor(maxK: number, private readonly prior?: AcceptanceMemory) {
    this.rule = new AcceptanceRule(maxK);
    const a = prior?.tokenAcceptance;
    if (a !== undefined) {
      this.kept = PRIOR_WEIGHT * a;
      this.rejected = PRIOR_WEIGHT * (1 - a);
    }
  }

  /** A verification is one failure at most; its kept drafts are successes. */
  get tokenAcceptance(): number {
    return this.kept + this.rejected > 0 ? this.kept / (this.kept + this.rejected) : this.rule.keptShare;
  }

  next(): number {
    return this.rule.next();
  }

  onVerified(drafted: number, accepted: number): void {
    if (drafted === 0) return;
    const rejected = accepted < drafted ? 1 : 0;
    this.kept = ACCEPT_DECAY * this.kept + accepted;
    this.rejected = ACCEPT_DECAY * this.rejected + rejected;
    this.prior?.add(accepted, rejected);
    this.rule.onVerified(drafted, accepted);
  }
}
