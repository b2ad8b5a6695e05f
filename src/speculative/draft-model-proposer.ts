// A smaller model that shares the target's tokenizer drafts k tokens autoregressively, batched across sequences:
// round 1 feeds each sequence's not-yet-seen tokens (different lengths, one pass), rounds 2..k one token each.
// Its KV cache is rolled back to the tokens the target kept.
import type { Decoder } from '../runtime/decoder.ts';
import type { KvCache } from '../runtime/kv-cache.ts';
import { argmax, isGreedy, probabilities, sampleFrom } from '../runtime/sampling.ts';
import type { Proposal, ProposalContext, Proposer } from './proposer.ts';
import { maskLogits } from '../runtime/structured/token-masker.ts';

interface DraftState {
  cache: KvCache;
  /** Tokens in the draft cache, in order. */
  fed: number[];
}

export interface DraftModelProposerOptions {
  /** Draft greedy proposals of a single stream with a draft chain (one session.run for k tokens) where the draft
   * model allows it (runtime/decoder.ts canChain). Default true. */
  chain?: boolean;
}

export class DraftModelProposer implements Proposer {
  readonly name = 'draft';
  private readonly states = new Map<string, DraftState>();
  private chain: boolean;

  constructor(readonly draft: Decoder, o: DraftModelProposerOptions = {}) {
    this.chain = (o.chain ?? true) && draft.canChain;
  }

  /** Builds the draft chains for up to `maxK` tokens ahead of the first request (else the first proposal of each
   * length pays for building its chain). */
  async warmUp(maxK: number): Promise<void> {
    if (!this.chain) return;
    try {
      await this.draft.prepareChains(maxK);
    } catch {
      this.chain = false;
    }
  }

  get kvBytes(): number {
    let total = 0;
    for (const s of this.states.values()) total += s.cache.bytes;
    return total;
  }

  begin(seq: ProposalContext): void {
    this.states.set(seq.id, { cache: this.draft.newCache(), fed: [] });
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
    // Under a constraint the draft samples from its masked distribution too (so q is what the verifier assumes) and
    // stops where the constraint ends the document.
    const states = new Map(active.map((r) => [r.i, r.seq.constraintState]));
    let round = active.filter((r) => r.k > 0);
    for (const r of round) {
      // The draft needs logits after the last token: if it has seen every token already (a second proposal from
      // the same context), feed the last one again.
      if (r.state.fed.length >= r.seq.tokens.length) {
        r.state.fed.length = r.seq.tokens.length - 1;
        r.state.cache.rollback(r.state.fed.length);
      }
    }
    let inputs = round.map((r) => r.seq.tokens.slice(r.state.fed.length));
    // A single greedy unconstrained stream: all k drafts in one pass.
    const [only] = round;
    if (this.chain && round.length === 1 && !proposals[only.i].probs && !only.seq.constraint) {
      try {
        const drafts = await this.draft.draftChain({ cache: only.state.cache, tokens: inputs[0] }, only.k);
        only.state.fed.push(...inputs[0], ...drafts.slice(0, -1));
        proposals[only.i].tokens = drafts;
        return proposals;
      } catch {
        this.chain = false; // a graph the chain cannot be built from: per-token drafting from now on
      }
    }
    while (round.length > 0) {
      const logits = await this.draft.forward(round.map((r, j) => ({ cache: r.state.cache, tokens: inputs[j] })));
      const next: typeof round = [];
      const nextInputs: number[][] = [];
      round.forEach((r, j) => {
        r.state.fed.push(...inputs[j]);
        const constraint = r.seq.constraint;
        const raw = logits[j][logits[j].length - 1];
        const last = constraint ? maskLogits(raw, constraint.allowed(states.get(r.i))) : raw;
        const proposal = proposals[r.i];
        let token: number;
        if (proposal.probs) {
          const q = probabilities(last, r.seq.sampling);
          token = sampleFrom(q, r.seq.rng);
          proposal.probs.push(q);
        } else {
          token = argmax(last);
        }
        proposal.tokens.push(token);
        let open = true;
        if (constraint) {
          const next = constraint.advance(states.get(r.i), token);
          states.set(r.i, next);
          open = next !== null && !constraint.isComplete(next);
        }
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
