// One engine step's passes (docs/design.md, "The engine"): the prefill of newcomers, and the decode step of the running
// sequences: draft lengths, the proposers' drafts (or a lone sequence's fused step), ONE batched target pass over
// every sequence's pending token and drafts, verification, rollback and commit. A fault in one sequence's own
// bookkeeping fails that sequence only; a failed pass fails the sequences in it.
import { isGreedy } from '../runtime/sampling.ts';
import { logitsStep, pickToken } from './logits-step.ts';
import { verify, verifyGreedy } from './rejection-sampler.ts';
import type { Sequence } from './sequence.ts';
import type { Proposal, Proposer } from './proposer.ts';
import type { EngineOptions, ForwardPhase } from './engine-api.ts';
import { StepDraftLengths } from './step-draft-lengths.ts';

/** What the passes need of the engine around them. */
export interface StepContext {
  readonly options: EngineOptions;
  maxPositions(): number;
  /** Requests the engine holds, running and waiting (the load rule counts both, as vLLM counts its queue). */
  load(): number;
  alive(seq: Sequence): boolean;
  failOne(seq: Sequence, error: Error): void;
  /** A prefilled sequence joins the running batch. */
  run(seq: Sequence): void;
  /** The fault injected for the next target pass, if any (test hook). */
  takeFault(): { badToken: number } | null;
}

export class StepPasses {
  /** Each step's draft lengths: the goodput policy and the step timing that feeds it. */
  private readonly draftLengths: StepDraftLengths;

  constructor(private readonly ctx: StepContext) {
    this.draftLengths = new StepDraftLengths(ctx.options.numSpeculativeTokens);
  }

  /** Drops step timing: a sequence finished or failed, so the next step is of another batch. */
  forget(): void {
    this.draftLengths.forget();
  }

  /** Commits tokens to `seq` (Sequence.commit), reports their timing and emits one token event; returns how many
   * entered its output. */
  private commit(seq: Sequence, ids: number[], logits: Float32Array[]): number {
    const { emitted, text, logprobs } = seq.commit(ids, logits);
    const now = performance.now();
    if (!seq.firstTokenAt) {
      seq.firstTokenAt = now;
      seq.stats.firstTokenSeconds = (now - seq.submittedAt) / 1000;
    } else if (emitted.length > 0) {
      this.ctx.options.hooks?.onTokens?.(emitted.length, (now - seq.lastTokenAt) / 1000);
    }
    seq.lastTokenAt = now;
    seq.emit({ type: 'token', ids: emitted, text, ...(logprobs ? { logprobs } : {}) });
    return emitted.length;
  }

  private async timed<T>(phase: ForwardPhase, batchSize: number, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await run();
    this.ctx.options.hooks?.onForward?.(phase, (performance.now() - started) / 1000, batchSize);
    return result;
  }

  /**
   * One prefill pass: `count` more prompt tokens of each sequence into its cache (a cache that starts from a cached
   * prefix, or a prompt prefilled in chunks, holds its first tokens already). A sequence whose whole prompt is in
   * then gets its first token and runs.
   */
  async prefill(work: { seq: Sequence; count: number }[]): Promise<void> {
    this.draftLengths.forget();
    const now = performance.now();
    for (const { seq } of work) {
      if (seq.cache.length !== seq.stats.numCachedTokens) continue;
      seq.stats.queueSeconds = (now - seq.submittedAt) / 1000;
    }
    const completes = work.map(({ seq, count }) => seq.cache.length + count === seq.tokens.length);
    // The first tokens' masks are computed in their grammar workers while the pass runs.
    const masking = work.map(({ seq }, b) => settle(completes[b] ? seq.constraint?.masksAlong([]) : undefined));
    let rows: Float32Array[][];
    try {
      rows = await this.timed('prefill', work.length, () => this.ctx.options.target.forward(work.map(({ seq, count }) => ({
        cache: seq.cache, tokens: seq.tokens.slice(seq.cache.length, seq.cache.length + count), lastOnly: true,
      }))));
    } catch (err) {
      for (const { seq } of work) this.ctx.failOne(seq, err as Error);
      return;
    }
    const seconds = (performance.now() - now) / 1000;
    for (const { seq } of work) seq.stats.prefillSeconds += seconds;
    const seqs = work.filter((_, b) => completes[b]).map((w) => w.seq);
    const logits = rows.filter((_, b) => completes[b]);
    const masks = (await Promise.all(masking)).filter((_, b) => completes[b]);
    const lasts = logits.map((rows) => rows[0]); // lastOnly: each row's last position
    // A constraint whose mask fails fails its own request (its row stays in, unmasked, and is dropped).
    const allowed = masks.map((m, b) => {
      if (m instanceof Error) this.ctx.failOne(seqs[b], m);
      return m instanceof Error ? undefined : m?.masks[0];
    });
    let step: Awaited<ReturnType<typeof logitsStep>>;
    try {
      step = await logitsStep(seqs.map((s, b) => ({ logits: s.penalized(lasts[b], []), allowed: allowed[b], sampling: s.sampling })));
    } catch (err) {
      for (const s of seqs) if (this.ctx.alive(s)) this.ctx.failOne(s, err as Error);
      return;
    }
    for (let b = 0; b < seqs.length; b++) {
      const s = seqs[b];
      if (!this.ctx.alive(s)) continue; // failed on its own above
      s.stats.numTargetPasses++;
      const token = pickToken(step, b, s.rng);
      try {
        this.commit(s, [token], [lasts[b]]);
        s.proposer?.begin(s);
      } catch (err) {
        this.ctx.failOne(s, err as Error);
        continue;
      }
      this.ctx.run(s);
    }
  }

  async decode(seqs: Sequence[]): Promise<void> {
    const started = performance.now();
    // The --speculative-disable-by-batch-size override; load counts every request the engine holds (running, just
    // admitted, waiting), as vLLM counts its queue.
    const limit = this.ctx.options.disableSpeculationAtBatch ?? 0;
    const speculate = limit <= 0 || this.ctx.load() < limit;
    const ks = this.draftLengths.choose(seqs, started, this.ctx.maxPositions(), speculate);
    this.ctx.options.hooks?.onDraftLengths?.(ks);
    const fault = this.ctx.takeFault();
    let pass: { drafts: Proposal[]; logits: Float32Array[][]; greedy: number[][]; p: (Float32Array[] | null)[] };
    try {
      const { drafts, masks, logits, targetProbs } = (await this.fusedPass(seqs, ks, fault)) ?? (await this.draftThenVerify(seqs, ks, fault));
      // What verification reads at each position: for a greedy sequence the target's token (the argmax over what its
      // constraint allows), for a sampled one its p row (masked likewise), all in one batch; a fused sampled step
      // computed its p rows in its pass.
      const allowed = masks.map((m, i) => {
        if (m instanceof Error) this.ctx.failOne(seqs[i], m);
        return m instanceof Error ? null : m;
      });
      const stepped = seqs.map((_, i) => !targetProbs?.[i]);
      // Position j is penalised with the draft tokens before it, as if they were committed.
      const flat = seqs.flatMap((s, i) => (stepped[i] ? logits[i].map((row, j) => ({
        logits: s.penalized(row, drafts[i].tokens.slice(0, j)), allowed: allowed[i]?.[j], sampling: s.sampling,
      })) : []));
      const step = await logitsStep(flat);
      const greedy: number[][] = [];
      const p: (Float32Array[] | null)[] = [];
      let at = 0;
      seqs.forEach((s, i) => {
        if (!stepped[i]) {
          greedy.push([]);
          p.push(targetProbs![i]!);
          return;
        }
        const end = at + logits[i].length;
        greedy.push(step.greedy.slice(at, end));
        p.push(isGreedy(s.sampling) ? null : (step.probs.slice(at, end) as Float32Array[]));
        at = end;
      });
      pass = { drafts, logits, greedy, p };
    } catch (err) {
      // A failed pass fails the requests in it only; their caches are dropped and the engine serves on.
      for (const s of seqs) this.ctx.failOne(s, err as Error);
      return;
    }
    const { drafts, logits, greedy, p } = pass;

    seqs.forEach((s, i) => {
      if (!this.ctx.alive(s)) return; // failed on its own earlier in this step
      try {
        this.verifyAndCommit(s, drafts[i], greedy[i], p[i], logits[i]);
      } catch (err) {
        this.ctx.failOne(s, err as Error);
      }
    });
  }

  /** One sequence's share of a decode step: verify its drafts against the pass, roll back, commit. */
  private verifyAndCommit(s: Sequence, draft: Proposal, greedy: number[], p: Float32Array[] | null, logits: Float32Array[]): void {
    const result = isGreedy(s.sampling)
      ? verifyGreedy(draft.tokens, greedy)
      : verify(draft.tokens, draft.probs ?? null, p!, s.rng);
    // Keep the pending token and the accepted drafts; the rejected positions roll back.
    s.cache.rollback(s.cache.length - draft.tokens.length + result.numAccepted);
    s.stats.numTargetPasses++;
    s.stats.numDrafted += draft.tokens.length;
    if (draft.tokens.length > 0) this.ctx.options.hooks?.onVerify?.(draft.tokens.length, result.numAccepted);
    s.draftLength.onVerified(draft.tokens.length, result.numAccepted);
    // Accepted drafts come first in result.tokens: those the output kept (before a stop string, max_tokens or EOS
    // ended it) are the ones the request's usage counts.
    s.stats.numAccepted += Math.min(result.numAccepted, this.commit(s, result.tokens, logits));
    s.proposer?.accept(s);
  }

  /** A lone sequence whose proposer drafts and verifies in one fused pass (reported as a verify pass); null where
   * that does not apply. */
  private async fusedPass(seqs: Sequence[], ks: number[], fault: { badToken: number } | null): Promise<PassResult | null> {
    const [s] = seqs;
    if (seqs.length !== 1 || ks[0] === 0 || fault || s.constraint || s.penalizes || !s.proposer?.proposeAndVerify) return null;
    const started = performance.now();
    const fused = await s.proposer.proposeAndVerify(s, ks[0], s.cache);
    if (!fused) return null;
    this.ctx.options.hooks?.onForward?.('verify', (performance.now() - started) / 1000, 1);
    return { drafts: [{ tokens: fused.tokens, probs: fused.probs }], masks: [null], logits: [fused.logits], targetProbs: [fused.targetProbs] };
  }

  /** Proposers draft (batched per proposer), then one batched target pass verifies every sequence's drafts. */
  private async draftThenVerify(seqs: Sequence[], ks: number[], fault: { badToken: number } | null): Promise<PassResult> {
    const drafts: Proposal[] = seqs.map(() => ({ tokens: [] }));
    const groups = new Map<Proposer, number[]>();
    seqs.forEach((s, i) => {
      if (ks[i] > 0 && s.proposer) groups.set(s.proposer, [...(groups.get(s.proposer) ?? []), i]);
    });
    for (const [proposer, idx] of groups) {
      const proposals = await this.timed('draft', idx.length, () => proposer.propose(idx.map((i) => ({ seq: seqs[i], k: ks[i] }))));
      idx.forEach((i, j) => (drafts[i] = proposals[j]));
    }
    // Under a constraint, the masks along each draft are computed in its grammar worker while the pass runs. A draft
    // token the grammar refuses (point-mass proposers do not know the grammar) is masked out of its own row, so
    // verification rejects it there and never reads the rows after it.
    const masking = seqs.map((s, i) => settle(s.constraint?.masksAlong(drafts[i].tokens)));
    const speculating = drafts.some((d) => d.tokens.length > 0);
    const logits = await this.timed(speculating ? 'verify' : 'decode', seqs.length, () => this.ctx.options.target.forward(seqs.map((s, i) => ({
      cache: s.cache,
      tokens: [fault ? fault.badToken : s.pending, ...drafts[i].tokens],
    }))));
    // A failed mask fails its request alone (its rows are computed and dropped, so the batch's layout holds).
    const masks = (await Promise.all(masking)).map((m) => (m instanceof Error ? m : m?.masks ?? null));
    return { drafts, masks, logits };
  }
}

/** What a decode step's pass returns: each sequence's proposal, the masks along it (null: unconstrained; an Error: its
 * masks failed), the
 * target's logits at each verified position, and where the pass computed them (a fused sampled step), the request's
 * p rows. */
interface PassResult {
  drafts: Proposal[];
  masks: (Int32Array[] | Error | null)[];
  logits: Float32Array[][];
  targetProbs?: (Float32Array[] | undefined)[];
}

/** A promise's value, or its error as a value (so that one request's failure does not reject a step's Promise.all). */
function settle<T>(promise: Promise<T> | undefined): Promise<T | Error | undefined> {
  return promise ? promise.catch((err: unknown) => (err instanceof Error ? err : new Error(String(err)))) : Promise.resolve(undefined);
}
