import { describe, expect, it } from 'vitest';
import { ngramLookup, NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import type { ProposalContext } from '../../../src/speculative/proposer.ts';

const ctx = (tokens: number[], prediction?: number[], numPromptTokens = 0): ProposalContext =>
  ({ id: 'x', tokens, numPromptTokens, sampling: GREEDY, rng: new Xoshiro128(1), prediction });

describe('ngramLookup', () => {
  it('proposes what followed the latest earlier match of the longest suffix', () => {
    expect(ngramLookup([1, 2, 3, 4, 5, 9, 1, 2, 3], [1, 2, 3, 4, 5, 9, 1, 2, 3], 2)).toEqual([4, 5]);
    expect(ngramLookup([7, 1, 8, 2, 1, 9, 2, 1], [7, 1, 8, 2, 1, 9, 2, 1], 3)).toEqual([9, 2, 1]); // "2 1" matched at 3
  });
  it('falls back to shorter n-grams and returns nothing without a match', () => {
    expect(ngramLookup([5, 6, 7, 6], [5, 6, 7, 6], 1)).toEqual([7]);
    expect(ngramLookup([1, 2, 3], [1, 2, 3], 4)).toEqual([]);
  });
  it('the n-gram proposer respects k', async () => {
    const [p] = await new NgramProposer().propose([{ seq: ctx([1, 2, 3, 4, 1, 2]), k: 1 }]);
    expect(p.tokens).toEqual([3]);
    expect(p.probs).toBeUndefined();
  });
});
