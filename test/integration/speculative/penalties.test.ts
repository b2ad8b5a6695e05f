// logit_bias, presence / frequency / repetition penalties, exact under speculation: greedy output with each proposer
// equals plain decoding's token for token under each penalty and their combination, and the joint distribution of the
// first three sampled tokens (penalised by the tokens before each, drafts included) follows the target's, by
// chi-square. Also through HTTP with the openai SDK.
import { describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY, probabilities, type SamplingParams } from '../../../src/runtime/sampling.ts';
import { penalize, type LogitPenalties } from '../../../src/runtime/logit-penalties.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { PredictionProposer } from '../../../src/speculative/prediction-proposer.ts';
import type { Proposer } from '../../../src/speculative/proposer.ts';
import { storiesDraftModel, storiesModel, useStoriesPair } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { chiSquareTest } from '../../helpers/chi-square.ts';
import { startServer } from '../../helpers/test-server.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('penalties under speculation');

const none: LogitPenalties = { logitBias: [], presence: 0, frequency: 0, repetition: 1 };

describe('penalties under speculation (stories260K + distilled draft)', () => {
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  useStoriesPair((pair) => ({ target, draft, tokenizer } = pair));

  const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog'];
  // Tokens the greedy text uses often (so that biases and penalties change it).
  const the = () => tokenizer.encode('the', false).at(-1)!;
  const cases = (): [string, LogitPenalties][] => [
    ['logit_bias', { ...none, logitBias: [[the(), -100], [tokenizer.encode('girl', false).at(-1)!, 5]] }],
    ['presence', { ...none, presence: 1.5 }],
    ['frequency', { ...none, frequency: 1.2 }],
    ['repetition', { ...none, repetition: 1.6 }],
    ['all', { logitBias: [[the(), -3]], presence: 0.7, frequency: 0.6, repetition: 1.3 }],
  ];

  it('greedy: each proposer equals plain decoding under each penalty and their combination, and the penalties act', async () => {
    const plainEngine = new Engine({ target, tokenizer, proposer: null, numSpeculativeTokens: 0, maxBatch: 16, maxQueue: 100 });
    const unpenalized = await Promise.all(PROMPTS.map((p) => collect(plainEngine, { promptIds: tokenizer.encode(p), maxTokens: 48, sampling: GREEDY, stop: [], ignoreEos: true })));
    for (const [label, penalties] of cases()) {
      const requests = (prediction?: number[]) => PROMPTS.map((p) => ({ promptIds: tokenizer.encode(p), maxTokens: 48, sampling: GREEDY, stop: [], ignoreEos: true, penalties, prediction }));
      const plain = await Promise.all(requests().map((r) => collect(plainEngine, r)));
      expect(plain.map((r) => r.tokens), `${label} changes the text`).not.toEqual(unpenalized.map((r) => r.tokens));
      if (label === 'logit_bias') expect(plain.every((r) => !r.tokens.includes(the()))).toBe(true);
      const proposers: [string, Proposer | null, Proposer | undefined][] = [
        ['draft', new DraftModelProposer(draft, { target }), undefined], ['ngram', new NgramProposer(), undefined], ['prediction', null, new PredictionProposer()],
      ];
      for (const [name, proposer, predictionProposer] of proposers) {
        const engine = new Engine({ target, tokenizer, proposer, predictionProposer, numSpeculativeTokens: 4, adaptiveDraftLength: false, maxBatch: 16, maxQueue: 100 });
        // Alone (a lone stream may use fused passes, which must step aside) and batched.
        const alone = await collect(engine, requests(predictionProposer ? unpenalized[0].tokens : undefined)[0]);
        const batched = await Promise.all(requests(predictionProposer ? unpenalized[0].tokens : undefined).map((r) => collect(engine, r)));
        await engine.close();
        expect(alone.tokens, `${label} ${name} alone`).toEqual(plain[0].tokens);
        expect(batched.map((r) => r.tokens), `${label} ${name}`).toEqual(plain.map((r) => r.tokens));
        expect(alone.numDrafted + batched.reduce((a, r) => a + r.numDrafted, 0), `${label} ${name} drafted`).toBeGreaterThan(0);
      }
    }
    await plainEngine.close();
  });

  it('sampling: the first three tokens follow the penalised target jointly, drafts counted before each position', async () => {
    const sampling: SamplingParams = { temperature: 1, topK: 6, topP: 1, minP: 0 };
    const prompt = tokenizer.encode('Once upon a time, there was a');
    const penalties: LogitPenalties = { logitBias: [[the(), 2]], presence: 0.8, frequency: 0.5, repetition: 1.4 };
    /** The exact joint distribution of the first three tokens, each drawn from `penalties` applied to the target's row
     * after the tokens before it (none: the plain target). */
    const joint = async (p: LogitPenalties | null) => {
      const rows = async (output: number[]) => {
        const [l] = await target.forward([{ cache: target.newCache(), tokens: [...prompt, ...output] }]);
        return probabilities(p ? penalize(l[l.length - 1], p, prompt, output) : l[l.length - 1], sampling);
      };
      const cells = new Map<string, number>();
      const p1 = await rows([]);
      for (let t1 = 0; t1 < p1.length; t1++) {
        if (p1[t1] === 0) continue;
        const p2 = await rows([t1]);
        for (let t2 = 0; t2 < p2.length; t2++) {
          if (p2[t2] === 0) continue;
          const p3 = await rows([t1, t2]);
          for (let t3 = 0; t3 < p3.length; t3++) if (p3[t3] > 0) cells.set(`${t1},${t2},${t3}`, p1[t1] * p2[t2] * p3[t3]);
        }
      }
      return cells;
    };
    const expected = await joint(penalties);
    const N = 2000;
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 2,
      adaptiveDraftLength: false, maxBatch: 16, maxQueue: N });
    const runs = await Promise.all(Array.from({ length: N }, (_, seed) =>
      collect(engine, { promptIds: prompt, maxTokens: 4, sampling, seed: 50_000 + seed, stop: [], ignoreEos: true, penalties })));
    await engine.close();
    const counts = new Map<string, number>();
    for (const r of runs) counts.set(r.tokens.slice(0, 3).join(','), (counts.get(r.tokens.slice(0, 3).join(',')) ?? 0) + 1);
    const keys = [...expected.keys()];
    const outside = [...counts.keys()].filter((k) => !expected.has(k)).reduce((a, k) => a + counts.get(k)!, 0);
    const fair = chiSquareTest(keys.map((k) => counts.get(k) ?? 0), keys.map((k) => expected.get(k)!));
    const drafted = runs.reduce((a, r) => a + r.numDrafted, 0);
    console.log(`[penalties] sampling: ${drafted} drafted; ${expected.size} cells, chi2=${fair.statistic.toFixed(1)} dof=${fair.dof} p=${fair.pValue.toExponential(2)} (${outside} outside)`);
    expect(drafted).toBeGreaterThan(N * 0.9);
    expect(outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(0.001);
    // The same samples against the unpenalised target's joint distribution fail: the test can tell.
    const plain = await joint(null);
    const plainKeys = [...plain.keys()];
    const unfair = chiSquareTest(plainKeys.map((k) => counts.get(k) ?? 0), plainKeys.map((k) => plain.get(k)!));
    const off = [...counts.keys()].filter((k) => !plain.has(k)).length;
    expect(unfair.pValue < 0.001 || off > 0).toBe(true);
  });

  it('over HTTP with the openai SDK: logit_bias and penalties, speculative equal to plain', async () => {
    const server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), numSpeculativeTokens: 4 });
    try {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const model = (await client.models.list()).data[0].id;
      const body = { model, prompt: 'Once upon a time', max_tokens: 40, temperature: 0, logit_bias: { [String(the())]: -100 },
        presence_penalty: 0.6, frequency_penalty: 0.4, repetition_penalty: 1.2 };
      const [spec, plain] = await Promise.all([client.completions.create(body as any), client.completions.create({ ...body, speculative: false } as any)]);
      expect(spec.choices[0].text).toBe(plain.choices[0].text);
      expect((spec as any).usage.speculative_decoding.draft_tokens).toBeGreaterThan(0);
      expect(tokenizer.encode(spec.choices[0].text, false)).not.toContain(the());
    } finally {
      await server.close();
    }
  });
});
