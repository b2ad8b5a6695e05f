// The goodput policy (docs/design.md, "Choosing k"): each decode step, the draft length of the batch's sequences that
// leave it to the engine is the k with the most expected tokens per second for the whole batch,
//   sum over sequences of E(a_i, min(k, cap_i)) / cost(kind, k),
// plain decoding (k = 0) included, where a_i is each sequence's acceptance, cap_i what it has room and use for, and
// cost(kind, k) the measured seconds of a decode step of that kind of batch (size bucket, proposers, greedy or
// sampled) at k, the draft's own passes included. A lone stream is the batch of one. This is what static tables by
// batch size (vLLM's num_speculative_tokens per batch size, TensorRT-LLM's draft_len_schedule) approximate by hand.
//
// Costs are learned online, one CostMemory per kind of batch, relative to plain decoding and from runs of different k
// that follow each other (a shared machine's speed drifts): while a kind is new, its first steps run at the acceptance
// rule's k, then plain decoding is compared with it, then the best known k runs, and other k are explored now and then
// (KChooser).
import { CostMemory, expectedTokens, type TokensAt } from './cost-memory.ts';

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
// Tokens a step emits at k, measured, against what E(a, k) promised for the same steps: a decayed sum of each (over
// ~50 steps), trusted once it holds MIN_TOKEN_STEPS steps' worth. The i.i.d. acceptance behind E overestimates long
// drafts (a rejection is likelier after a hard token than after an easy one):
// the measured share corrects E at each k by what that k actually delivered.
const TOKEN_DECAY = 0.98;
const MIN_TOKEN_STEPS = 8;
/** The decayed weight of MIN_TOKEN_STEPS steps. */
const MIN_TOKEN_WEIGHT = (1 - TOKEN_DECAY ** MIN_TOKEN_STEPS) / (1 - TOKEN_DECAY);
// An exploration away from plain decoding costs more than its own steps: its first step feeds the draft every token
// since the draft last ran (a prefill-sized pass), a cost no k's steady measurement sees. What each such exploration
// lost against plain decoding (its seconds in plain steps, less the tokens it delivered) spaces the next one, so that
// explorations from plain decoding lose at most EXPLORE_BUDGET of the time; one that paid spaces nothing.
const EXPLORE_BUDGET = 0.02;
// Weight of the newest plain step in the plain step's time.
const PLAIN_EMA = 0.1;

/** Per k, measured tokens per sequence-step over what the model expected for them. */
class TokenYield {
  private readonly actual: number[] = [];
  private readonly expected: number[] = [];
  private readonly weight: number[] = [];

  add(k: number, actual: number, expected: number): void {
    if (!(expected > 0) || !(actual >= 0)) return;
    this.actual[k] = TOKEN_DECAY * (this.actual[k] ?? 0) + actual;
    this.expected[k] = TOKEN_DECAY * (this.expected[k] ?? 0) + expected;
    this.weight[k] = TOKEN_DECAY * (this.weight[k] ?? 0) + 1;
  }

  /** What k delivers per token it was expected to (1 until measured; exactly 1 at k = 0, one token a step). */
  share(k: number): number {
    if (k === 0 || (this.weight[k] ?? 0) < MIN_TOKEN_WEIGHT) return 1;
    return Math.min(1, this.actual[k] / this.expected[k]);
  }
}

/** The k of one kind of batch: explores, measures and chooses over its CostMemory. */
export class KChooser {
  /** A draft length to try for a few steps, and how many are left. */
  private explore: { k: number; left: number } | null = null;
  /** The last choice by measured cost. */
  private chosen: number | null = null;
  /** The draft length of the last step timed. */
  private lastTimed = -1;
  /** Expected tokens at each k, as of the last choice. */
  private tokens: TokensAt = () => 1;
  readonly yields = new TokenYield();
  /** Seconds of a plain step (a moving average), the unit of an exploration's loss. */
  private plainSeconds = 0;
  /** An exploration from plain decoding under way: its k, and its steps' seconds and tokens per sequence so far. */
  private episode: { k: number; seconds: number; tokens: number } | null = null;
  /** Measured steps before which no exploration from plain decoding starts (the budget above). */
  private quietUntil = 0;
  /** The spacing the last exploration from plain decoding measured, for one whose loss could not be measured. */
  private lastSpacing = 0;
  /** The step at which plain decoding was last explored (its measurement may have been cut short by the batch). */
  private plainTriedAt = 0;

  constructor(private readonly maxK: number, readonly costs = new CostMemory()) {}

  /** The batch's k: an exploration under way, else the best by measured cost, else `standIn` (costs not yet known). */
  next(modelled: TokensAt, standIn: () => number): number {
    const tokens = (k: number) => modelled(k) * this.yields.share(k);
    this.tokens = tokens;
    if (this.explore) {
      const { k } = this.explore;
      if (--this.explore.left === 0) this.explore = null;
      return k;
    }
    this.chosen = this.costs.best(tokens, this.maxK) ?? null;
    return this.chosen ?? standIn();
  }

  /** The next steps of this kind do not follow the last ones (its batch changed); the first after it runs cold. */
  interrupt(): void {
    this.costs.interrupt();
    this.lastTimed = -1;
    this.unmeasured();
  }

  /** A step of this kind went untimed (a prefill, a finished sequence): an exploration from plain decoding under way
   * cannot be charged whole (its first step, the draft's catching up, is the likeliest to be missing), so it spaces
   * the next as the last measured one did. */
  unmeasured(): void {
    if (!this.episode) return;
    this.episode = null;
    this.quietUntil = Math.max(this.quietUntil, this.costs.steps + this.lastSpacing);
  }

  /** A step of this kind with k draft tokens took `seconds`, from its start to the start of the next, and emitted
   * `tokens` per sequence where E(a, k) expected `expected` (when known). */
  onStepTimed(k: number, seconds: number, tokens?: { actual: number; expected: number }): void {
    if (!(seconds > 0)) return;
    if (tokens && k > 0) this.yields.add(k, tokens.actual, tokens.expected);
    this.account(k, seconds, tokens?.actual);
    const switched = k !== this.lastTimed;
    this.lastTimed = k;
    const c = this.costs;
    if (switched || !c.add(k, seconds) || this.explore) return;
    if (!c.calibrated) {
      // A first comparison: plain decoding after the stand-in's k (or the longest k after plain decoding).
      if (c.steps >= COST_WARMUP) this.explore = { k: k === 0 ? this.maxK : 0, left: EXPLORE_STEPS };
    } else if (c.steps % (c.steps < YOUNG_STEPS ? EXPLORE_EVERY_YOUNG : EXPLORE_EVERY) === 0) {
      const choice = this.chosen ?? k;
      if (choice === 0 && c.steps < this.quietUntil) return;
      const next = this.explorationTarget(choice);
      if (next === null) return;
      this.explore = { k: next, left: EXPLORE_STEPS };
      if (choice === 0) this.episode = { k: next, seconds: 0, tokens: 0 };
    }
  }

  /** Keeps the plain step's time, and what an exploration from plain decoding cost, once it is back. */
  private account(k: number, seconds: number, tokens: number | undefined): void {
    const e = this.episode;
    if (k === 0) {
      if (e && this.plainSeconds > 0) {
        // Plain steps the exploration's time would have bought, less the tokens per sequence it delivered (a plain
        // step delivers one).
        const lost = e.seconds / this.plainSeconds - e.tokens;
        this.lastSpacing = Math.max(0, lost / EXPLORE_BUDGET);
        this.quietUntil = this.costs.steps + this.lastSpacing;
      }
      this.episode = null;
      this.plainSeconds = this.plainSeconds > 0 ? (1 - PLAIN_EMA) * this.plainSeconds + PLAIN_EMA * seconds : seconds;
    } else if (e) {
      if (k !== e.k || tokens === undefined) this.unmeasured(); // not the exploration, or not measured whole
      else {
        e.seconds += seconds;
        e.tokens += tokens;
      }
    }
  }

  /** The k to explore next, or null: plain decoding, once its last measurement is STALE_AFTER steps old; else among the
   * others whose expected rate is within EXPLORE_WITHIN of the choice's, the one measured longest ago (never measured
   * first); failing that, a neighbour of the choice or the runner-up, whichever was measured longest ago, once that
   * is STALE_AFTER steps. */
  private explorationTarget(choice: number): number | null {
    const c = this.costs;
    const a = this.tokens;
    // Plain decoding is the unit of every cost, and speculative lengths compared among themselves keep their ratios:
    // a level set wrong against plain steps (a cold start's) is corrected only by measuring plain steps again.
    if (choice !== 0 && c.steps - Math.max(c.lastMeasured(0), this.plainTriedAt) >= STALE_AFTER) {
      this.plainTriedAt = c.steps;
      return 0;
    }
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

/** What the policy needs of a sequence: its acceptance, and the most draft tokens it can use now. */
export interface Candidate {
  acceptance: number;
  cap: number;
}

/** E(a_i, min(k, cap_i)) averaged over a batch's sequences: what the model expects a step at k to emit for each. */
export function meanExpectedTokens(seqs: readonly Candidate[], k: number): number {
  let sum = 0;
  for (const s of seqs) sum += expectedTokens(s.acceptance, Math.min(k, s.cap));
  return sum / seqs.length;
}

export class GoodputPolicy {
  private readonly choosers = new Map<string, KChooser>();

  constructor(private readonly maxK: number) {}

  /** The draft length for `seqs`, a batch of `kind` (batchKind). */
  choose(kind: string, seqs: readonly Candidate[], standIn: () => number): number {
    if (this.maxK === 0 || seqs.length === 0) return 0;
    const tokens = (k: number) => meanExpectedTokens(seqs, k);
    // Until this kind's costs are known, the nearest smaller batch of the same proposers and sampling that knows its
    // own stands in (the best k shrinks as batches grow, so this errs towards speculating), else the acceptance rule.
    const nearer = () => this.nearestSmaller(kind)?.costs.best(tokens, this.maxK) ?? standIn();
    return this.chooser(kind).next(tokens, nearer);
  }

  private nearestSmaller(kind: string): KChooser | undefined {
    const [bucket, ...rest] = kind.split('/');
    let found: { size: number; chooser: KChooser } | undefined;
    for (const [other, chooser] of this.choosers) {
      const [b, ...r] = other.split('/');
      const size = Number(b);
      if (r.join('/') === rest.join('/') && size < Number(bucket) && chooser.costs.calibrated && (!found || size > found.size)) {
        found = { size, chooser };
      }
    }
    return found?.chooser;
  }

  onStepTimed(kind: string, k: number, seconds: number, tokens?: { actual: number; expected: number }): void {
    this.chooser(kind).onStepTimed(k, seconds, tokens);
  }

  /** The batch of `kind` changed: its next step does not follow its last. */
  interrupt(kind: string): void {
    this.choosers.get(kind)?.interrupt();
  }

  /** A step of `kind` went untimed. */
  unmeasured(kind: string): void {
    this.choosers.get(kind)?.unmeasured();
  }

  /** What a step of `kind` costs at k relative to plain decoding, where known (tests, logs). */
  cost(kind: string, k: number): number | undefined {
    return this.choosers.get(kind)?.costs.cost(k);
  }

  private chooser(kind: string): KChooser {
    let c = this.choosers.get(kind);
    if (!c) this.choosers.set(kind, (c = new KChooser(this.maxK)));
    return c;
  }
}

/** The kind of a batch whose steps cost alike: its size bucket (1, 2, 3-4, 5-8, ...), its proposers, and whether it
 * samples (a sampled step computes distributions a greedy one does not). */
export function batchKind(size: number, proposers: readonly string[], sampled: boolean): string {
  const bucket = size <= 2 ? size : 2 ** Math.ceil(Math.log2(size));
  return `${bucket}/${[...new Set(proposers)].sort().join('+')}/${sampled ? 'sampled' : 'greedy'}`;
}
