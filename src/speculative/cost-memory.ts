// What speculation costs and how often it is accepted, learned by measurement and kept by the engine across requests
// (docs/design.md, "Choosing k"). A CostMemory holds the seconds per decode step of one kind of batch (its size
// bucket, its proposers, greedy or sampled) at each draft length k; an AcceptanceMemory the per-token acceptance a of
// one proposer and kind, which a new sequence starts from. With acceptance a, a proposal of k tokens emits
// E(k) = (1 - a^(k+1)) / (1 - a) tokens per target pass (Leviathan et al. 2023, eq. 1); the best k has the most
// tokens per second, E(k) / cost(k). What a step costs at each k depends on the model, the device, the proposer's
// mode and the batch, in ways only measurement knows.

// Steps a fresh memory does not record: the first steps of a process run cold code (JIT, allocator, caches) and are
// several times slower, which would make speculation look hopeless for hundreds of steps.
const IGNORE_FIRST = 8;
// A measurement older than this many steps no longer counts (the k counts as never measured: its cost is estimated
// again, and exploring it becomes possible), so that a change of the machine's speed does not pin old choices.
const EXPIRE_AFTER = 1280;
// Per-k step costs are means whose measurements lose weight with age, counted in measured steps of any k (half-life
// ~35 steps): the k in use is a mean over its last ~50 steps, and one that is only explored now and then does not keep
// a stale cost for long.
const COST_DECAY = 0.98;
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

/** Measured seconds per decode step for each draft length, of one kind of batch. */
export class CostMemory {
  private readonly seconds: number[] = [];
  private readonly weight: number[] = [];
  private readonly measuredAt: number[] = [];
  /** Steps measured so far, over every k. */
  steps = 0;
  /** Steps offered, the ignored first ones included. */
  private offered = 0;

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

  /** Expected tokens per second and sequence at k (estimated cost where k was never measured). */
  rate(tokens: TokensAt, k: number, maxK: number): number | undefined {
    const c = this.estimate(k, maxK);
    return c === undefined ? undefined : (k === 0 ? COST_MARGIN : tokens(k)) / c;
  }

  /** The k in 0..maxK with the most expected tokens per second, among measured ones (plain decoding counts with the
   * margin speculation must beat); undefined until plain decoding and some k > 0 are measured. */
  best(tokens: TokensAt, maxK: number): number | undefined {
    if (this.cost(0) === undefined) return undefined;
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
