// The contract every proposer keeps (STYLE.md: one interface, several implementations, one shared test).
import { describe, expect, it } from 'vitest';
import type { Proposer, ProposalContext } from '../../src/speculative/proposer.ts';
import { Xoshiro128 } from '../../src/runtime/rng.ts';
import { GREEDY } from '../../src/runtime/sampling.ts';

export interface ProposerFixture {
  make(): Promise<Proposer> | Proposer;
  /** A context the proposer can propose for (prompt + some output), and the vocabulary size. */
  context(id: string, sampled: boolean): ProposalContext;
  vocabSize: number;
  /** False for proposers that may legitimately propose nothing here (e.g. n-gram without a repeat). */
  alwaysProposes: boolean;
}

export function proposerContract(name: string, fixture: ProposerFixture): void {
  describe(`proposer contract: ${name}`, () => {
    it('proposes at most k tokens, inside the vocabulary, nothing for k = 0', async () => {
      const p = await fixture.make();
      for (const k of [0, 1, 3, 6]) {
        const seq = fixture.context(`a${k}`, false);
        await p.begin(seq);
        const [proposal] = await p.propose([{ seq, k }]);
        expect(proposal.tokens.length).toBeLessThanOrEqual(k);
        if (k > 0 && fixture.alwaysProposes) expect(proposal.tokens.length).toBeGreaterThan(0);
        expect(proposal.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < fixture.vocabSize)).toBe(true);
        p.end(seq);
      }
    });

    it('greedy proposals are deterministic, and independent of other sequences in the batch', async () => {
      const p = await fixture.make();
      const a = fixture.context('x', false);
      const b = fixture.context('y', false);
      const c = fixture.context('z', false);
      for (const s of [a, b, c]) await p.begin(s);
      const [alone] = await p.propose([{ seq: a, k: 4 }]);
      p.accept({ ...a, tokens: a.tokens }); // nothing kept beyond the context: the proposer rolls back
      const [batched] = await p.propose([{ seq: b, k: 2 }, { seq: c, k: 4 }]);
      expect(batched.tokens.length).toBeLessThanOrEqual(2);
      const again = await p.propose([{ seq: a, k: 4 }]);
      expect(again[0].tokens).toEqual(alone.tokens);
      for (const s of [a, b, c]) p.end(s);
    });

    it('a sequence\'s proposal in a batch equals its proposal alone (other rows differ in length, content and k)', async () => {
      const alone = await fixture.make();
      const a = fixture.context('a', false);
      await alone.begin(a);
      const [single] = await alone.propose([{ seq: a, k: 4 }]);
      alone.end(a);

      const batched = await fixture.make();
      const base = fixture.context('b', false);
      const output = base.tokens.slice(base.numPromptTokens);
      // A shorter row, the same row again, and a longer one that repeats its output.
      const b = { ...base, tokens: base.tokens.slice(0, Math.max(base.numPromptTokens + 1, base.tokens.length - 2)) };
      const c = { ...fixture.context('c', false), tokens: [...base.tokens, ...output, ...output] };
      const a2 = fixture.context('a2', false);
      for (const s of [b, a2, c]) await batched.begin(s);
      const proposals = await batched.propose([{ seq: b, k: 2 }, { seq: a2, k: 4 }, { seq: c, k: 6 }]);
      expect(proposals[1].tokens).toEqual(single.tokens);
      expect(proposals[0].tokens.length).toBeLessThanOrEqual(2);
      expect(proposals[2].tokens.length).toBeLessThanOrEqual(6);
      for (const s of [b, a2, c]) batched.end(s);
    });

    it('a distribution, when given, has one normalised row per token, and the token has mass in it', async () => {
      const p = await fixture.make();
      const seq = fixture.context('s', true);
      await p.begin(seq);
      const [proposal] = await p.propose([{ seq, k: 3 }]);
      if (proposal.probs) {
        expect(proposal.probs).toHaveLength(proposal.tokens.length);
        proposal.probs.forEach((row, i) => {
          expect(row.reduce((x, y) => x + y, 0)).toBeCloseTo(1, 4);
          expect(row[proposal.tokens[i]]).toBeGreaterThan(0);
        });
      }
      p.end(seq);
    });
  });
}

export function contextFactory(tokens: number[], numPromptTokens: number, prediction?: number[]) {
  return (id: string, sampled: boolean): ProposalContext => ({
    id, tokens: [...tokens], numPromptTokens, prediction,
    sampling: sampled ? { temperature: 1, topK: 0, topP: 1, minP: 0 } : GREEDY, rng: new Xoshiro128(3),
  });
}
