// Exactness, sampling, end to end: with the real distilled draft proposing, the joint distribution of the first two
// generated tokens equals the target's own (exactly enumerated from target passes), by chi-square. The same test
// applied to a deliberately biased acceptance rule (always accept the draft) fails, so the test has power. Twice:
// seeded requests in batches (the draft drafts one pass per token in JS), and lone unseeded requests, whose steps
// draft in the graph of a fused step (draws by inverse CDF, q and p computed in the pass).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { probabilities, sampleFrom, type SamplingParams } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { chiSquareTest } from '../../helpers/chi-square.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('speculative sampling distribution');

const SAMPLING: SamplingParams = { temperature: 1, topK: 4, topP: 1, minP: 0 };
const NUM_SAMPLES = 2000;
const P_THRESHOLD = 0.001;
// Unseeded requests (the fused path's) draw differently on every run: more samples and a lower threshold keep a false
// failure at 1 in 10^4 runs while the biased rule still fails far below it.
const FUSED_SAMPLES = 3000;
const FUSED_P_THRESHOLD = 1e-4;

describe('speculative sampling distribution (stories260K + distilled draft)', () => {
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  let prompt: number[];
  /** exact joint probability of (t1, t2) under the target alone */
  const exact = new Map<string, number>();
  const draftQ = new Map<number, Float32Array>();

  beforeAll(async () => {
    const dir = storiesModel();
    target = await Decoder.open(dir);
    draft = await Decoder.open(storiesDraftModel());
    tokenizer = TextTokenizer.load(dir);
    prompt = tokenizer.encode('Once upon a time, there was a');
    const [first] = await target.forward([{ cache: target.newCache(), tokens: prompt }]);
    const p1 = probabilities(first[first.length - 1], SAMPLING);
    for (let t1 = 0; t1 < p1.length; t1++) {
      if (p1[t1] === 0) continue;
      const [second] = await target.forward([{ cache: target.newCache(), tokens: [...prompt, t1] }]);
      const p2 = probabilities(second[second.length - 1], SAMPLING);
      for (let t2 = 0; t2 < p2.length; t2++) if (p2[t2] > 0) exact.set(`${t1},${t2}`, p1[t1] * p2[t2]);
      const [d] = await draft.forward([{ cache: draft.newCache(), tokens: [...prompt, t1] }]);
      draftQ.set(t1, probabilities(d[d.length - 1], SAMPLING));
    }
  });
  afterAll(async () => {
    await target.close();
    await draft.close();
  });

  function test(counts: Map<string, number>, expected = exact) {
    const keys = [...expected.keys()];
    const outside = [...counts.keys()].filter((k) => !expected.has(k)).reduce((a, k) => a + counts.get(k)!, 0);
    return { ...chiSquareTest(keys.map((k) => counts.get(k) ?? 0), keys.map((k) => expected.get(k)!)), outside };
  }

  it('the engine with the draft proposing matches the target distribution; a biased rule does not', async () => {
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 2,
      adaptiveDraftLength: false, maxBatch: 16, maxQueue: NUM_SAMPLES });
    const runs = await Promise.all(Array.from({ length: NUM_SAMPLES }, (_, seed) =>
      collect(engine, { promptIds: prompt, maxTokens: 3, sampling: SAMPLING, seed, stop: [], ignoreEos: true })));
    await engine.close();
    const counts = new Map<string, number>();
    for (const r of runs) counts.set(`${r.tokens[0]},${r.tokens[1]}`, (counts.get(`${r.tokens[0]},${r.tokens[1]}`) ?? 0) + 1);
    const drafted = runs.reduce((a, r) => a + r.numDrafted, 0);
    const accepted = runs.reduce((a, r) => a + r.numAccepted, 0);
    const fair = test(counts);

    const p1Keys = [...new Set([...exact.keys()].map((k) => Number(k.split(',')[0])))];
    const biased = test(biasedRule(exact, draftQ, 77, NUM_SAMPLES));
    console.log(`[spec] sampling: ${drafted} drafted, ${accepted} accepted (${(accepted / drafted * 100).toFixed(1)}%); ` +
      `chi2=${fair.statistic.toFixed(1)} dof=${fair.dof} p=${fair.pValue.toExponential(2)}; biased rule: p=${biased.pValue.toExponential(2)} ` +
      `(${biased.outside} samples outside the target's support); first-token support ${p1Keys.length}`);

    expect(drafted).toBeGreaterThan(NUM_SAMPLES * 0.9); // speculation really ran on the second token
    expect(accepted).toBeLessThan(drafted); // and rejections (recovered tokens) happened
    expect(fair.outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(P_THRESHOLD);
    expect(biased.pValue < P_THRESHOLD || biased.outside > 0).toBe(true);
  });
  it('with the goodput policy choosing k (the server default), unseeded requests in batches follow the target', async () => {
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 2,
      maxBatch: 16, maxQueue: FUSED_SAMPLES });
    const runs = await Promise.all(Array.from({ length: FUSED_SAMPLES }, () =>
      collect(engine, { promptIds: prompt, maxTokens: 3, sampling: SAMPLING, stop: [], ignoreEos: true })));
    await engine.close();
    const counts = new Map<string, number>();
    for (const r of runs) counts.set(`${r.tokens[0]},${r.tokens[1]}`, (counts.get(`${r.tokens[0]},${r.tokens[1]}`) ?? 0) + 1);
    const drafted = runs.reduce((a, r) => a + r.numDrafted, 0);
    const fair = test(counts);
    console.log(`[spec] goodput policy, unseeded batches: ${drafted} drafted; chi2=${fair.statistic.toFixed(1)} dof=${fair.dof} p=${fair.pValue.toExponential(2)}`);
    // Each request lives a prefill and a step or two, so no batch is timed twice in a row: the acceptance rule stands
    // in for the policy and speculation runs.
    expect(drafted).toBeGreaterThan(FUSED_SAMPLES * 0.5);
    expect(fair.outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(FUSED_P_THRESHOLD);
  });

  // Deeper than one draft: with k = 2 the second and third tokens come from acceptance at depth 1 and 2 (or the
  // recovery after a rejection), with k = 1 the third is the bonus token after an accepted draft; under top-p and
  // min-p, whose cuts the verifier applies to p (the draft's q is the same request's cut distribution).
  it.each([1, 2])('k = %i, top-p 0.8 and min-p 0.05: the first three tokens follow the target jointly', async (k) => {
    const sampling: SamplingParams = { temperature: 1, topK: 0, topP: 0.8, minP: 0.05 };
    const expected = new Map<string, number>();
    const rows = async (tokens: number[]) => {
      const [l] = await target.forward([{ cache: target.newCache(), tokens }]);
      return probabilities(l[l.length - 1], sampling);
    };
    const p1 = await rows(prompt);
    for (let t1 = 0; t1 < p1.length; t1++) {
      if (p1[t1] === 0) continue;
      const p2 = await rows([...prompt, t1]);
      for (let t2 = 0; t2 < p2.length; t2++) {
        if (p2[t2] === 0) continue;
        const p3 = await rows([...prompt, t1, t2]);
        for (let t3 = 0; t3 < p3.length; t3++) if (p3[t3] > 0) expected.set(`${t1},${t2},${t3}`, p1[t1] * p2[t2] * p3[t3]);
      }
    }
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: k,
      adaptiveDraftLength: false, maxBatch: 16, maxQueue: NUM_SAMPLES });
    const runs = await Promise.all(Array.from({ length: NUM_SAMPLES }, (_, seed) =>
      collect(engine, { promptIds: prompt, maxTokens: 4, sampling, seed: 10_000 + seed, stop: [], ignoreEos: true })));
    await engine.close();
    const counts = new Map<string, number>();
    for (const r of runs) counts.set(r.tokens.slice(0, 3).join(','), (counts.get(r.tokens.slice(0, 3).join(',')) ?? 0) + 1);
    const drafted = runs.reduce((a, r) => a + r.numDrafted, 0);
    const accepted = runs.reduce((a, r) => a + r.numAccepted, 0);
    const fair = test(counts, expected);
    console.log(`[spec] depth ${k}, top-p/min-p: ${drafted} drafted, ${accepted} accepted; ${expected.size} cells, ` +
      `chi2=${fair.statistic.toFixed(1)} dof=${fair.dof} p=${fair.pValue.toExponential(2)} (${fair.outside} outside)`);
    expect(drafted).toBeGreaterThan(NUM_SAMPLES * k * 0.9); // the first decode step drafted k tokens
    expect(accepted).toBeGreaterThan(0);
    expect(accepted).toBeLessThan(drafted);
    expect(fair.outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(P_THRESHOLD);
  });

  // The verifier's p rows are the pass's softmax, cut by the request's top-k where it has one; the draft draws from its
  // temperature-only q either way. (Cells of small probability pool into one.)
  it.each([
    ['temperature alone', { temperature: 1, topK: 0, topP: 1, minP: 0 }],
    ['top-k 4', { temperature: 1, topK: 4, topP: 1, minP: 0 }],
  ] as [string, SamplingParams][])('lone unseeded requests drafting in fused sampled steps (%s) match the target distribution; a biased rule does not', async (_, sampling) => {
    const expected = new Map<string, number>();
    const q = new Map<number, Float32Array>();
    const [first] = await target.forward([{ cache: target.newCache(), tokens: prompt }]);
    const p1 = probabilities(first[first.length - 1], sampling);
    for (let t1 = 0; t1 < p1.length; t1++) {
      if (p1[t1] < 1e-4) continue;
      const [second] = await target.forward([{ cache: target.newCache(), tokens: [...prompt, t1] }]);
      const p2 = probabilities(second[second.length - 1], sampling);
      for (let t2 = 0; t2 < p2.length; t2++) if (p1[t1] * p2[t2] > 1e-7) expected.set(`${t1},${t2}`, p1[t1] * p2[t2]);
      const [d] = await draft.forward([{ cache: draft.newCache(), tokens: [...prompt, t1] }]);
      q.set(t1, probabilities(d[d.length - 1], sampling));
    }
    // Counted, not replaced: every fused step still runs the real pass.
    let fused = 0;
    const step = draft.speculativeStep.bind(draft);
    draft.speculativeStep = ((...args: Parameters<Decoder['speculativeStep']>) => {
      fused++;
      return step(...args);
    }) as Decoder['speculativeStep'];
    const proposer = new DraftModelProposer(draft, { target });
    await proposer.warmUp(2);
    const engine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 2, adaptiveDraftLength: false, maxBatch: 1, maxQueue: 1 });
    const counts = new Map<string, number>();
    let drafted = 0;
    let accepted = 0;
    try {
      for (let i = 0; i < FUSED_SAMPLES; i++) {
        const r = await collect(engine, { promptIds: prompt, maxTokens: 3, sampling, stop: [], ignoreEos: true });
        counts.set(`${r.tokens[0]},${r.tokens[1]}`, (counts.get(`${r.tokens[0]},${r.tokens[1]}`) ?? 0) + 1);
        drafted += r.numDrafted;
        accepted += r.numAccepted;
      }
    } finally {
      await engine.close();
      draft.speculativeStep = step;
    }
    const fair = test(counts, expected);

    const biased = test(biasedRule(expected, q, 78, FUSED_SAMPLES), expected);
    console.log(`[spec] fused sampling (${JSON.stringify(sampling)}): ${fused} fused steps, ${drafted} drafted, ${accepted} accepted; chi2=${fair.statistic.toFixed(1)} ` +
      `dof=${fair.dof} p=${fair.pValue.toExponential(2)} (${fair.outside} outside); biased rule: p=${biased.pValue.toExponential(2)}`);

    expect(fused).toBeGreaterThanOrEqual(FUSED_SAMPLES); // every request's second token came through a fused step
    // Under top-k the exact support is complete: nothing outside it (a draft beyond the top 4 is never kept).
    if (sampling.topK > 0) expect(fair.outside).toBe(0);
    expect(accepted).toBeLessThan(drafted);
    expect(accepted).toBeGreaterThan(0);
    expect(fair.pValue).toBeGreaterThan(FUSED_P_THRESHOLD);
    expect(biased.pValue).toBeLessThan(FUSED_P_THRESHOLD);
  });
});

/** Counts of (t1, t2) under a biased rule on the same real distributions: t1 from the target's marginal (from the
 * exact joint), then the draft's token always accepted. */
function biasedRule(joint: Map<string, number>, draftQ: Map<number, Float32Array>, seed: number, samples: number): Map<string, number> {
  const rng = new Xoshiro128(seed);
  const marginal = new Float32Array(512);
  for (const [k, v] of joint) marginal[Number(k.split(',')[0])] += v;
  const counts = new Map<string, number>();
  for (let i = 0; i < samples; i++) {
    const t1 = sampleFrom(marginal, rng);
    const t2 = sampleFrom(draftQ.get(t1)!, rng);
    counts.set(`${t1},${t2}`, (counts.get(`${t1},${t2}`) ?? 0) + 1);
  }
  return counts;
}
