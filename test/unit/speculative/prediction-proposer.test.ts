// Predicted Outputs followed from the start: the first proposal continues the prediction's head, a prediction that
// repeats itself is followed in order (not from its latest match), an edit re-synchronises, and the accepted count
// is what OpenAI means by accepted prediction tokens.
import { describe, expect, it } from 'vitest';
import { PredictionProposer, predictionMatches } from '../../../src/speculative/prediction-proposer.ts';
import type { ProposalContext } from '../../../src/speculative/proposer.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';

const PROMPT = [100, 101];
function context(prediction: number[], output: number[]): ProposalContext {
  return { id: 'x', tokens: [...PROMPT, ...output], numPromptTokens: PROMPT.length, sampling: GREEDY, rng: new Xoshiro128(1), prediction };
}

async function proposals(prediction: number[], outputs: number[][], k = 3): Promise<number[][]> {
  const p = new PredictionProposer();
  p.begin(context(prediction, []));
  const out: number[][] = [];
  for (const output of outputs) out.push((await p.propose([{ seq: context(prediction, output), k }]))[0].tokens);
  return out;
}

describe('PredictionProposer', () => {
  it('proposes the head right after the prefill\'s token', async () => {
    expect(await proposals([5, 6, 7, 8, 9], [[5]])).toEqual([[6, 7, 8]]);
  });

  it('follows a prediction that repeats itself in order', async () => {
    const prediction = [1, 2, 3, 1, 2, 4, 1, 2, 5];
    expect(await proposals(prediction, [[1, 2], [1, 2, 3, 1, 2], [1, 2, 3, 1, 2, 4, 1, 2]], 2)).toEqual([[3, 1], [4, 1], [5]]);
  });

  it('re-synchronises after an edit on the output\'s last tokens, and is quiet while lost', async () => {
    const prediction = [10, 11, 12, 13, 14, 15, 16];
    expect(await proposals(prediction, [[10, 11], [10, 11, 99], [10, 11, 99, 98], [10, 11, 99, 98, 13, 14]], 2))
      .toEqual([[12, 13], [], [], [15, 16]]);
  });

  it('counts the output tokens that followed the prediction', () => {
    expect(predictionMatches([1, 2, 3, 4], [1, 2, 3, 4])).toBe(4);
    expect(predictionMatches([1, 2, 3, 4], [1, 2, 9, 3, 4])).toBe(4); // 9 is an insertion; 3 4 re-synchronise
    expect(predictionMatches([1, 2, 3, 4], [7, 8])).toBe(0);
    expect(predictionMatches([1, 1], [1, 1, 1, 1, 1])).toBe(2); // never more than the prediction has
  });
});
