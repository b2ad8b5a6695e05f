// Exactness with the goodput policy on (the server default: the batch's k chosen each step from acceptance and
// measured step costs): one batch mixing greedy, seeded sampled, unseeded sampled, JSON-constrained and Predicted
// Outputs requests gives, for each greedy one, target-only greedy tokens; for each seeded one, the text it gets alone;
// for the constrained one, the tokens it gets without speculation. Whatever k the policy picks at each step.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { GrammarService, grammarVocabulary } from '../../../src/runtime/structured/grammar-service.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { PredictionProposer } from '../../../src/speculative/prediction-proposer.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('goodput policy, mixed batches');

describe('the goodput policy in a mixed batch (stories260K + distilled draft)', () => {
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = storiesModel();
    target = await Decoder.open(dir);
    draft = await Decoder.open(storiesDraftModel());
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(async () => {
    await target.close();
    await draft.close();
  });

  const engine = (k: number) => {
    const constraints = new GrammarService(grammarVocabulary(tokenizer, target.vocabSize, target.folder.eosTokenIds));
    const draftLengths: number[][] = [];
    const e = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), predictionProposer: new PredictionProposer(),
      numSpeculativeTokens: k, maxBatch: 16, maxQueue: 64, constraints,
      hooks: { onDraftLengths: (ks) => draftLengths.push(ks) } });
    return { e, draftLengths };
  };

  it('keeps every request exact, whatever k it chooses', async () => {
    const ids = (text: string) => tokenizer.encode(text);
    const sampled = { temperature: 0.9, topK: 0, topP: 0.95, minP: 0 };
    const greedy: GenerationRequest[] = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She']
      .map((p, i) => ({ promptIds: ids(p), maxTokens: 60 + 10 * i, sampling: GREEDY, stop: [] }));
    const seeded: GenerationRequest[] = [11, 12].map((seed) => ({ promptIds: ids('One day, a boy named Tim'), maxTokens: 50, sampling: sampled, seed, stop: [] }));
    const unseeded: GenerationRequest = { promptIds: ids('The sun was'), maxTokens: 50, sampling: sampled, stop: [] };
    const constrained: GenerationRequest = { promptIds: ids('Mom said'), maxTokens: 60, sampling: GREEDY, stop: [], constraint: { type: 'json', schema: { type: 'object' } } };
    const expectedGreedy = await Promise.all(greedy.map(async (r) => (await generate(target, tokenizer, r.promptIds, { maxTokens: r.maxTokens, sampling: GREEDY })).tokens));
    const predicted: GenerationRequest = { ...greedy[0], prediction: expectedGreedy[0].slice(0, 40) };

    const { e, draftLengths } = engine(4);
    // Outside any batch first: each seeded request alone, the constrained one without speculation.
    const alone = [];
    for (const r of seeded) alone.push((await collect(e, r)).tokens);
    const plainConstrained = (await collect(e, { ...constrained, numSpeculativeTokens: 0 })).tokens;

    // Then all in one batch, admitted together.
    e.pause();
    const runs = [...greedy, predicted, ...seeded, unseeded, constrained].map((r) => collect(e, r));
    e.resume();
    const out = await Promise.all(runs);
    await e.close();

    expect(out.slice(0, 4).map((r) => r.tokens)).toEqual(expectedGreedy);
    expect(out[4].tokens).toEqual(expectedGreedy[0]);
    expect(out.slice(5, 7).map((r) => r.tokens)).toEqual(alone);
    expect(out[8].tokens).toEqual(plainConstrained);
    expect(out[8].text.trim().startsWith('{')).toBe(true);
    // Speculation ran in the batch (the seeded ones speculate at any load), and the policy reported every step's k.
    expect(out.slice(0, 7).reduce((a, r) => a + r.numDrafted, 0)).toBeGreaterThan(0);
    expect(draftLengths.some((ks) => ks.length === 9)).toBe(true);
    expect(draftLengths.flat().every((k) => k >= 0 && k <= 4)).toBe(true);
  });
});
