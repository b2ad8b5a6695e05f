// Sampling distributions of large vocabularies computed in one ONNX Runtime run (runtime/batch-softmax.ts): the same
// distributions as the JS path, row by row the same whatever else is in the run (a seeded request must draw alike
// alone and in a batch), and through the engine: seeded sampled requests with speculation give the same text alone
// and batched on a model whose vocabulary takes this path.
import { describe, expect, it } from 'vitest';
import { ORT_SOFTMAX_FROM, rowProbabilities } from '../../../src/runtime/batch-softmax.ts';
import { probabilities, type SamplingParams } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

const V = ORT_SOFTMAX_FROM + 904;
const PARAMS: SamplingParams[] = [
  { temperature: 1, topK: 0, topP: 1, minP: 0 },
  { temperature: 0, topK: 0, topP: 1, minP: 0 },
  { temperature: 0.7, topK: 50, topP: 1, minP: 0 },
  { temperature: 1.3, topK: 0, topP: 0.9, minP: 0 },
  { temperature: 0.9, topK: 0, topP: 1, minP: 0.05 },
];

describe('rowProbabilities (softmax in one ONNX Runtime run)', () => {
  it('matches the JS distributions, and a row is the same alone or with others', async () => {
    const rng = new Xoshiro128(9);
    const rows = PARAMS.map(() => Float32Array.from({ length: V }, () => (rng.next() * 2 - 1) * 6));
    const together = await rowProbabilities(rows, PARAMS);
    for (let i = 0; i < rows.length; i++) {
      const js = probabilities(rows[i], PARAMS[i]);
      expect(maxDiff(together[i], js)).toBeLessThan(1e-6);
      const support = (p: Float32Array) => p.reduce((n, x) => n + (x > 0 ? 1 : 0), 0);
      expect(support(together[i])).toBe(support(js));
      const [alone] = await rowProbabilities([rows[i]], [PARAMS[i]]);
      expect(Array.from(alone)).toEqual(Array.from(together[i]));
    }
    // Below the threshold the JS path itself answers.
    const small = rows[0].subarray(0, 512);
    expect(Array.from((await rowProbabilities([small], [PARAMS[0]]))[0])).toEqual(Array.from(probabilities(small, PARAMS[0])));
  });

  it('seeded sampled requests with a draft give the same text alone and in a batch', async () => {
    const dir = tinyModel({ seed: 21, vocabSize: V, numLayers: 3 });
    const target = await Decoder.open(dir);
    const draft = await Decoder.open(earlyExitDraft(dir, 1));
    const tokenizer = TextTokenizer.load(dir);
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 3,
      adaptiveDraftLength: false, maxBatch: 8, maxQueue: 16 });
    try {
      const requests = [0, 1, 2].map((i) => ({ promptIds: [1, 10 + i, 20, 30 + i], maxTokens: 24, stop: [], ignoreEos: true,
        sampling: PARAMS[(i + 2) % PARAMS.length], seed: 70 + i }));
      const alone = [];
      for (const r of requests) alone.push(await collect(engine, r));
      const together = await Promise.all(requests.map((r) => collect(engine, r)));
      expect(together.map((g) => g.tokens)).toEqual(alone.map((g) => g.tokens));
      expect(alone.every((g) => g.tokens.length === 24 && g.numDrafted > 0)).toBe(true);
    } finally {
      await engine.close();
      await draft.close();
      await target.close();
    }
  });
});
