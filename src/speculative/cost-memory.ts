// What speculation costs and how often it is accepted, learned by measurement and kept by the engine across requests
// (docs/design.md, "Choosing k"). A CostMemory holds what a decode step of one kind of batch (its size bucket, its
// proposers, greedy or sampled) costs at each draft length k, relative to a plain step; an AcceptanceMemory the
// per-token acceptance a of one proposer and kind, which a new sequence starts from. With acceptance a, a proposal of k tokens emits
// E(k) = (1 - a^(k+1)) / (1 - a) tokens per target pass (Leviathan et al. 2023, eq. 1); the best k has the most
// tokens per second, E(k) / cost(k). What a step costs at each k depends on the model, the device, the proposer's
// mode and the batch, in ways only measurement knows.

// Steps a fresh memory does not record: the first steps of a process run cold code (JIT, allocator, caches) and are
// several times slower, which would make speculation look hopeless for hundreds of steps.
const IGNORE_FIRST = 8;
// A k not compared for this many steps counts as never measured (its cost is estimated again, and exploring it
// becomes possible), so that old comparisons do not pin old choices.
const EXPIRE_AFTER = 1280;
// Steps at each end of a run of one k that a comparison with the neighbouring run uses: those closest in time to it.
const EDGE_STEPS = 8;
const MIN_COMPARED = 2;
// Weight of the newest comparison in a relative cost (about the last three count); a cost not compared for
// STALE_STEPS is replaced by the new comparison (the costs may have changed since).
const LEARNING_RATE = 0.3;
// A comparison with plain decoding compared long ago moves every speculative length's level by this share of its
// error (one comparison on a noisy machine: not all of it).
const LEVEL_RATE = 0.5;
const STALE_STEPS = 64;
// A kind's acceptance decays per verification (over ~50).
const SHARED_ACCEPT_DECAY = 0.98;
// A choice of speculation must beat plain decoding's expected rate by this margin (noise on a shared machine).
const COST_MARGIN = 1.03;

/** Expected tokens per target pass for k draft tokens at per-token acceptance a. */
export function expectedTokens(a: number, k: number): number {
  const p = Math.min(Math.max(a, 0), 0.99);
  return (1 - p ** (k + 1)) / (1 - p);
}

/** Expected tokens per sequence and step at draft length k (1 at k = 0). */
export type TokensAt = (k: number) => number;

/** Per-token acceptance of one proposer and kind, decaying, from every verification of its sequences. */
export class AcceptanceMemory {
  private kept = 0;
  private rejected = 0;

  add(kept: number, rejected: number): void {
    this.kept = SHARED_ACCEPT_DECAY * this.kept + kept;
    this.rejected = SHARED_ACCEPT_DECAY * this.rejected + rejected;
  }

  /** a in E(k), or undefined before any verification. */
  get tokenAcceptance(): number | undefined {
    return this.kept + this.rejected > 0 ? this.kept / (this.kept + this.rejected) : undefined;
  }
}

/** Consecutive steps at one k: the first and the last few of them. */
class Run {
  readonly first: number[] = [];
  readonly last: number[] = [];
  constructor(readonly k: number) {}

  add(seconds: number): void {
    if (this.first.length < EDGE_STEPS) this.first.push(seconds);
    this.last.push(seconds);
    if (this.last.length > EDGE_STEPS) this.last.shift();
  }
}

/** The median: a step caught by a garbage collection, a cache move or a scheduling hiccup does not count. */
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/**
 * What a decode step of one kind of batch costs at each draft length k, relative to a plain step of the same kind:
 * f(k) = cost(k) / cost(0). A shared machine's speed drifts, by half or double for seconds at a time, so costs
 * measured at different times do not compare: f is learned from runs of different k that follow each other (the last
 * steps of one against the first of the next), as log-ratios, and the choice depends on f alone (the speed cancels
 * out of E(k) / cost(k)).
 */
export class CostMemory {
  /** log f(k); log f(0) = 0. */
  private readonly logF: (number | undefined)[] = [0];
  private readonly comparedAt: number[] = [0];
  /** Steps measured so far, over every k. */
  steps = 0;
  /** Steps offered, the ignored first ones included. */
  private offered = 0;
  private run: Run | null = null;
  private previous: Run | null = null;

  /** Records a step's cost; false while the memory is ignoring its first steps. */
  add(k: number, seconds: number): boolean {
    if (++this.offered <= IGNORE_FIRST) return false;
    this.steps++;
    if (this.run?.k !== k) {
      if (this.run) {
        if (this.previous) this.compare(this.previous, this.run);
        this.previous = this.run;
      }
      this.run = new Run(k);
    }
    this.run.add(seconds);
    return true;
  }

  /** The steps recorded next do not follow the last ones (the batch changed in between: other members, other past
   * lengths): no comparison across the gap. */
  interrupt(): void {
    this.run = this.previous = null;
  }

  /** Learns from `before` followed by `after`: log(after's first steps / before's last steps) ~ log f(after) - log f(before),
   * each side's median. */
  private compare(before: Run, after: Run): void {
    // One step is too noisy to learn from (a run cut short by a newcomer's prefill).
    if (before.last.length < MIN_COMPARED || after.first.length < MIN_COMPARED) return;
    const d = Math.log(median(after.first) / median(before.last));
    const [p, w] = [before.k, after.k];
    const gp = this.cost(p) === undefined ? undefined : this.logF[p]!;
    const gw = this.cost(w) === undefined ? undefined : this.logF[w]!;
    if (gp === undefined && gw === undefined) return; // nothing to anchor either on yet
    if (gw === undefined) this.logF[w] = gp! + d;
    else if (gp === undefined) this.logF[p] = gw - d;
    else if ((p === 0 || w === 0) && this.steps - this.comparedAt[0] > STALE_STEPS) {
      // Plain decoding, the unit, compared long ago: the new comparison moves the level of every speculative length,
      // not the compared one's alone. Lengths compared among themselves keep their ratios, so a level set wrong
      // against plain steps (a cold start's first plain steps run several times slower) would otherwise hold.
      const e = p === 0 ? d - gw : -(d + gp);
      for (let j = 1; j < this.logF.length; j++) if (this.logF[j] !== undefined) this.logF[j]! += LEVEL_RATE * e;
    } else {
      // Plain decoding is the unit: only the other side moves; a side last compared long ago moves more.
      const e = d - (gw - gp);
      const stale = (k: number) => k > 0 && this.steps - this.comparedAt[k] > STALE_STEPS;
      // The share of the error each side takes: a stale side all of it (against a fresh one), else LEARNING_RATE,
      // split between two sides that can both move.
      const [sp, sw] = [stale(p), stale(w)];
      const [mp, mw] = p === 0 ? [0, 1] : w === 0 ? [1, 0] : sp === sw ? [0.5, 0.5] : sp ? [1, 0] : [0, 1];
      const rate = (sp && mp > 0) || (sw && mw > 0) ? 1 : LEARNING_RATE;
      this.logF[w] = gw + mw * rate * e;
      this.logF[p] = gp - mp * rate * e;
    }
    this.comparedAt[p] = this.comparedAt[w] = this.steps;
  }

  /** f(k), or undefined where k was never compared (or not for EXPIRE_AFTER steps); f(0) = 1. */
  cost(k: number): number | undefined {
    const g = this.logF[k];
    if (g === undefined || (k > 0 && this.steps - this.comparedAt[k] > EXPIRE_AFTER)) return undefined;
    return Math.exp(g);
  }

  /** The step at which k was last compared (0: never). */
  lastMeasured(k: number): number {
    return this.comparedAt[k] ?? 0;
  }

  /** Whether some k > 0 has a known cost (before that, nothing is chosen by cost). */
  get calibrated(): boolean {
    return this.logF.some((g, k) => k > 0 && g !== undefined && this.cost(k) !== undefined);
  }

  /** f at k: measured, else interpolated linearly between the nearest known lengths below and above (extrapolated
   * from the two largest speculative ones when none is above, or the largest's if it is the only one); undefined
   * until some k > 0 is known. */
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

  /** Expected tokens per second and sequence at k (estimated cost where k was never measured). */
  rate(tokens: TokensAt, k: number, maxK: number): number | undefined {
    const c = this.estimate(k, maxK);
    return c === undefined ? undefined : (k === 0 ? COST_MARGIN : tokens(k)) / c;
  }

  /** The k in 0..maxK with the most expected tokens per second, among measured ones (plain decoding counts with the
   * margin speculation must beat); undefined until plain decoding and some k > 0 are measured. */
  best(tokens: TokensAt, maxK: number): number | undefined {
    if (!this.calibrated) return undefined;
    let best: number | undefined;
    let bestRate = 0;
    let speculative = false;
    for (let k = 0; k <= maxK; k++) {
      if (this.cost(k) === undefined) continue;
      speculative ||= k > 0;
      const rate = this.rate(tokens, k, maxK)!;
      if (rate > bestRate) {
        best = k;
        bestRate = rate;
      }
    }
    return speculative ? best : undefined;
  }
}
