// The draft lengths of one decode step (docs/design.md, "Choosing k"): each sequence's own where its request or
// reproducibility fixes it, the goodput policy's choice for the rest of the batch, capped by the tokens each still
// wants and the room left in its context; and the timing of steps that feeds the policy's costs.
import { batchKind, GoodputPolicy, meanExpectedTokens, type Candidate } from './goodput.ts';
import type { Sequence } from './sequence.ts';
import { isGreedy } from '../runtime/sampling.ts';

export class StepDraftLengths {
  private readonly goodput: GoodputPolicy;
  /** The last decode step, if every sequence in it left its k to the policy: its cost is known when the next step of
   * the same batch starts. */
  private last: { seqs: Sequence[]; kind: string; k: number; started: number; outputs: number[]; expected: number } | null = null;
  /** The kind and mean context length of the last step that could be timed: runs of k are compared across a change
   * of members (a newcomer, a finished request) but not across a change of kind or a jump of the context length by
   * more than a quarter (a new wave of requests), where a step's cost changes for reasons other than k. */
  private context: { kind: string; length: number } | null = null;

  constructor(maxK: number) {
    this.goodput = new GoodputPolicy(maxK);
  }

  /** Drops timing state (a sequence finished or failed, a prefill ran): the next step does not follow the last. */
  forget(): void {
    if (this.last) this.goodput.unmeasured(this.last.kind);
    this.last = null;
  }

  /**
   * The draft length of each of `seqs` for the step starting at `started` (ms). `speculate` false: plain decoding for
   * every sequence whose k is not fixed (the --speculative-disable-by-batch-size override).
   */
  choose(seqs: readonly Sequence[], started: number, maxPositions: number, speculate: boolean): number[] {
    // A step costs from its start to the start of the next step of the same batch (the engine's work between steps
    // included); anything else in between voids the measurement.
    const last = this.last;
    this.last = null;
    const followed = last && last.seqs.length === seqs.length && last.seqs.every((s, i) => s === seqs[i]);
    if (last && !followed) this.goodput.unmeasured(last.kind);
    if (last && followed) {
      // The tokens it emitted per sequence (what the target kept, and its own), against E(a, k)'s promise.
      const actual = seqs.reduce((sum, s, i) => sum + s.output.tokens.length - last.outputs[i], 0) / seqs.length;
      this.goodput.onStepTimed(last.kind, last.k, (started - last.started) / 1000, { actual, expected: last.expected });
    }
    const caps = seqs.map((s) => Math.max(0, Math.min(s.request.maxTokens - s.output.tokens.length - 1, maxPositions - s.cache.length - 1)));
    const batched = seqs.flatMap((s, i) => (s.draftLength.batched && s.proposer ? [i] : []));
    let k = 0;
    let kind = '';
    let candidates: Candidate[] = [];
    if (speculate && batched.length > 0) {
      kind = batchKind(seqs.length, batched.map((i) => seqs[i].proposer!.name), batched.some((i) => !isGreedy(seqs[i].sampling)));
      candidates = batched.map((i) => ({ acceptance: seqs[i].draftLength.tokenAcceptance, cap: caps[i] }));
      // Until the kind's costs are known, the sequences' acceptance rules stand in (the longest of their choices).
      k = this.goodput.choose(kind, candidates, () => Math.max(...batched.map((i) => seqs[i].draftLength.next())));
    }
    const ks = seqs.map((s, i) => {
      // A request that names its draft length gets it at any load, as documented; so do seeded sampled requests,
      // whose random draws must not depend on the load.
      const fixed = !s.draftLength.batched;
      if (!speculate && !s.seededSampling && s.request.numSpeculativeTokens === undefined) return 0;
      return Math.min(fixed ? s.draftLength.next() : k, caps[i]);
    });
    if (kind && batched.length === seqs.length) {
      const length = seqs.reduce((a, s) => a + s.cache.length, 0) / seqs.length;
      const c = this.context;
      if (c && (c.kind !== kind || Math.abs(length - c.length) > 0.25 * c.length + 8)) this.goodput.interrupt(c.kind);
      this.context = { kind, length };
      // Every sequence is a candidate here (batched.length === seqs.length).
      this.last = { seqs: [...seqs], kind, k, started, outputs: seqs.map((s) => s.output.tokens.length), expected: meanExpectedTokens(candidates, k) };
    }
    return ks;
  }
}
