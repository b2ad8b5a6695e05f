// A smaller model that shares the target's tokenizer drafts k tokens autoregressively, batched across sequences:
// round 1 feeds each sequence's not-yet-seen tokens (different lengths, one pass), rounds 2..k one token each.
// Its KV cache is rolled back to the tokens the target kept. A lone greedy stream drafts all k in one pass (a draft
// chain), and where the target is small too, drafts and verifies in one pass (proposeAndVerify, a fused step). So does
// a lone sampled stream without a seed: its fused step draws the drafts in the graph from softmax(logits / T), one
// uniform per draft from the request's RNG (graphs/draft-chain.ts), and returns their distributions q for rejection
// sampling, with the target's softmax(logits / T), which the request's top-k / top-p / min-p cut here. The draft
// samples from the temperature alone: rejection sampling is exact for any q. (A seeded request drafts as in a batch,
// one pass per token drawing from its RNG in JS: its text must not depend on whether it ran alone, and float32 and
// float64 cumulative sums may part at a boundary.)
import type { Decoder } from '../runtime/decoder.ts';
import { heldBytes, type KvCache } from '../runtime/kv-cache.ts';
import { applyCutoffs, isGreedy } from '../runtime/sampling.ts';
import { logitsStep, pickToken } from './logits-step.ts';
import type { FusedProposal, Proposal, ProposalContext, Proposer } from './proposer.ts';

interface DraftState {
  cache: KvCache;
  /** Tokens in the draft cache, in order. */
  fed: number[];
}

export interface DraftModelProposerOptions {
  /** Draft greedy proposals of a single stream with a draft chain (one session.run for k tokens) where the draft
   * model allows it (runtime/decoder.ts canChain). Default true. */
  chain?: boolean;
  /** And fuse that chain with the target's verification pass where both models allow it (canFuseWith). Default
   * true. */
  fuse?: boolean;
  /** The target it drafts for, for fused steps (without it, drafts and verification run apart). */
  target?: Decoder;
}

/** The passes faster than one per draft token, each used where the models allow it (runtime/decoder.ts). */
type PassMode = 'chain' | 'fuse' | 'fuseSampled';

export class DraftModelProposer implements Proposer {
  readonly name = 'draft';
  private readonly states = new Map<string, DraftState>();
  /** The faster passes still in use: one whose graph cannot be built is given up for good (giveUp), never one whose
   * run fails (that failure is the engine's to report). A fused step runs a chain, so it goes with it. */
  private readonly modes = new Set<PassMode>();
  private readonly givenUp: string[] = [];
  /** Modes and lengths whose graph is built ("fuse.3"). */
  private readonly ready = new Set<string>();
  private readonly target: Decoder | null;

  constructor(readonly draft: Decoder, o: DraftModelProposerOptions = {}) {
    this.target = o.target ?? null;
    if ((o.chain ?? true) && draft.canChain) this.modes.add('chain');
    if (this.modes.has('chain') && (o.fuse ?? true) && this.target !== null && draft.canFuseWith(this.target)) {
      this.modes.add('fuse').add('fuseSampled');
    }
  }

  /** Builds the draft chains (and with a target, the fused steps) for up to `maxK` tokens ahead of the first request
   * (else the first proposal of each length pays for building its graph). */
  async warmUp(maxK: number): Promise<void> {
    for (let k = 1; k <= maxK; k++) {
      await this.built('chain', k);
      await this.built('fuse', k);
      await this.built('fuseSampled', k);
    }
  }

  /** How a lone greedy stream (and a sampled one) drafts with this proposer, in words (start-up log). */
  mode(): string {
    const why = this.givenUp.length > 0 ? ` (${this.givenUp.join('; ')})` : '';
    if (this.modes.has('fuse')) {
      return `draft and verify in one fused pass${this.modes.has('fuseSampled') ? ', and so do unseeded sampled ones' : ''}${why}`;
    }
    return (this.modes.has('chain') ? 'draft with a draft chain' : 'draft one pass per token') + why;
  }

  /** Whether `mode` is in use for k draft tokens, its graph built (once). Answered without an await once built: it is
   * asked at every step, whose fixed cost is most of a small model's. */
  private built(mode: PassMode, k: number): boolean | Promise<boolean> {
    if (!this.modes.has(mode)) return false;
    const key = `${mode}.${k}`;
    if (this.ready.has(key)) return true;
    return this.build(mode, k).then(() => {
      this.ready.add(key);
      return true;
    }, (err) => {
      this.giveUp(mode, err);
      return false;
    });
  }

  private async build(mode: PassMode, k: number): Promise<void> {
    if (mode === 'chain') await this.draft.prepareChain(k);
    else await this.draft.prepareStep(this.target!, k, mode === 'fuseSampled');
  }

  private giveUp(mode: PassMode, err: unknown): void {
    const lost: PassMode[] = mode === 'chain' ? ['chain', 'fuse', 'fuseSampled'] : mode === 'fuse' ? ['fuse', 'fuseSampled'] : [mode];
    for (const m of lost) this.modes.delete(m);
    this.givenUp.push(`${mode} unavailable: ${(err as Error).message?.split('\n')[0] ?? err}`);
  }

  get kvBytes(): number {
    return heldBytes([...this.states.values()].map((s) => s.cache), this.draft.feedBuffers());
  }

  begin(seq: ProposalContext): void {
    const kept = seq.draftPrefix;
    this.states.set(seq.id, kept ? { cache: kept.cache, fed: [...kept.tokens] } : { cache: this.draft.newCache(), fed: [] });
  }

  keep(seq: ProposalContext): { cache: KvCache; tokens: number[] } | null {
    const s = this.states.get(seq.id);
    if (!s || s.cache.length === 0) return null;
    return { cache: s.cache.fork(s.cache.length), tokens: s.fed.slice(0, s.cache.length) };
  }

  end(seq: ProposalContext): void {
    this.states.get(seq.id)?.cache.clear();
    this.states.delete(seq.id);
  }

  accept(seq: ProposalContext): void {
    const s = this.states.get(seq.id);
    if (!s) return;
    let common = 0;
    while (common < s.fed.length && common < seq.tokens.length && s.fed[common] === seq.tokens[common]) common++;
    s.fed.length = common;
    s.cache.rollback(common);
  }

  async proposeAndVerify(seq: ProposalContext, k: number, targetCache: KvCache): Promise<FusedProposal | null> {
    const state = this.states.get(seq.id);
    const target = this.target;
    k = Math.min(k, this.draft.folder.maxPositions - seq.tokens.length);
    const sampled = !isGreedy(seq.sampling);
    if (!target || !state || k <= 0 || seq.constraint || seq.penalizes || (sampled && seq.seededSampling)) return null;
    const fusable = this.built(sampled ? 'fuseSampled' : 'fuse', k);
    if (fusable !== true && !(await fusable)) return null;
    const inputs = this.unseen(state, seq);
    const uniforms = sampled ? Array.from({ length: k }, () => seq.rng.next()) : [];
    const { drafts, logits, draftProbs, targetProbs } = await this.draft.speculativeStep(target, { cache: state.cache, tokens: inputs },
      targetCache, seq.tokens[seq.tokens.length - 1], k, sampled ? { temperature: seq.sampling.temperature, uniforms } : undefined);
    state.fed.push(...inputs, ...drafts.slice(0, -1));
    if (!sampled) return { tokens: drafts, logits };
    // A draft where its own q is 0 can only come from float32 rounding (a uniform beyond the cumulative total, ~1e-7;
    // the graph then takes token 0): the proposal ends before it, and the target cache gives back what follows.
    const cut = drafts.findIndex((x, i) => !(draftProbs![i][x] > 0));
    if (cut >= 0) {
      targetCache.rollback(targetCache.length - (k - cut));
      drafts.length = draftProbs!.length = cut;
      logits.length = targetProbs!.length = cut + 1;
    }
    // The pass computed softmax(logits / T); the request's top-k / top-p / min-p cut it here.
    return { tokens: drafts, probs: draftProbs, targetProbs: targetProbs!.map((row) => applyCutoffs(row, seq.sampling)), logits };
  }

  /** The tokens of `seq` the draft has not seen; at least the last one (a second proposal from the same context feeds
   * it again, since the draft needs the logits after it). */
  private unseen(state: DraftState, seq: ProposalContext): number[] {
    if (state.fed.length >= seq.tokens.length) {
      state.fed.length = seq.tokens.length - 1;
      state.cache.rollback(state.fed.length);
    }
    return seq.tokens.slice(state.fed.length);
  }

  async propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]> {
    const proposals: Proposal[] = requests.map(() => ({ tokens: [] }));
    const active = requests
      .map((r, i) => ({ ...r, i, state: this.states.get(r.seq.id)! }))
      .filter((r) => r.state && r.k > 0);
    for (const r of active) {
      // The draft's own context limit may be shorter than the target's.
      r.k = Math.min(r.k, this.draft.folder.maxPositions - r.seq.tokens.length);
      if (!isGreedy(r.seq.sampling)) proposals[r.i].probs = [];
    }
    // Under a constraint the draft samples from its masked distribution too (so q is what the verifier assumes): each
    // position's mask is computed in the grammar's worker while the draft's pass runs. Drafting stops after a stop
    // token, and where a mask fails (verification then fails that request alone).
    let round = active.filter((r) => r.k > 0);
    let inputs = round.map((r) => this.unseen(r.state, r.seq));
    // A single greedy unconstrained stream: all k drafts in one pass.
    const [only] = round;
    const chained = round.length === 1 && !proposals[only.i].probs && !only.seq.constraint && !only.seq.penalizes ? this.built('chain', only.k) : false;
    if (chained === true || (chained !== false && (await chained))) {
      const drafts = await this.draft.draftChain({ cache: only.state.cache, tokens: inputs[0] }, only.k);
      only.state.fed.push(...inputs[0], ...drafts.slice(0, -1));
      proposals[only.i].tokens = drafts;
      return proposals;
    }
    while (round.length > 0) {
      const masking = round.map((r) => r.seq.constraint?.masksAlong(proposals[r.i].tokens).then(
        (m) => (m.kept === proposals[r.i].tokens.length ? m.masks[m.kept] : null), () => null));
      const logits = await this.draft.forward(round.map((r, j) => ({ cache: r.state.cache, tokens: inputs[j], lastOnly: true })));
      const masks = await Promise.all(masking);
      // Under a constraint the draft's rows are masked too; the sampled rows' q come in one batch.
      const step = await logitsStep(round.map((r, j) => ({
        logits: r.seq.penalized?.(logits[j][0], proposals[r.i].tokens) ?? logits[j][0], allowed: masks[j] ?? undefined, sampling: r.seq.sampling,
      })));
      const next: typeof round = [];
      const nextInputs: number[][] = [];
      round.forEach((r, j) => {
        r.state.fed.push(...inputs[j]);
        const constraint = r.seq.constraint;
        const proposal = proposals[r.i];
        if (constraint && !masks[j]) return; // its mask failed: the draft ends here
        const q = step.probs[j];
        const token = pickToken(step, j, r.seq.rng);
        if (proposal.probs && q) proposal.probs.push(q);
        proposal.tokens.push(token);
        const open = !constraint?.isStop(token);
        if (open && proposal.tokens.length < r.k) {
          next.push(r);
          nextInputs.push([token]);
        }
      });
      round = next;
      inputs = nextInputs;
    }
    return proposals;
  }
}
