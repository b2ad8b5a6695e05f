// Draft chains (k greedy draft steps in one session.run) against drafting one forward pass at a time: the same
// tokens, and a KV cache that continues exactly as if the drafts had been fed one by one. Fused speculative steps
// (a chain and the target's verification in one session.run) against a chain and a separate target pass, greedy and
// sampled (drafts drawn in the graph by inverse CDF from the uniforms given).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { argmax, probabilities, type SamplingParams } from '../../../src/runtime/sampling.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

describe.each(['fp32', 'fp16', 'int8'] as const)('draft chain (%s)', (dtype) => {
  let decoder: Decoder;
  beforeAll(async () => {
    decoder = await Decoder.open(tinyModel({ seed: 11 }, ['fp16', 'int8']), { dtype });
  });
  afterAll(() => decoder.close());

  it('drafts the same k tokens as k single passes, and leaves the cache as they would', async () => {
    expect(decoder.canChain).toBe(true);
    for (const k of [1, 2, 5]) {
      const prompt = [1, 20 + k, 30, 40, 50];
      const stepwise = decoder.newCache();
      let logits = (await decoder.forward([{ cache: stepwise, tokens: prompt }]))[0];
      const expected: number[] = [];
      for (let i = 0; i < k; i++) {
        expected.push(argmax(logits[logits.length - 1]));
        if (i < k - 1) logits = (await decoder.forward([{ cache: stepwise, tokens: [expected[i]] }]))[0];
      }

      const chained = decoder.newCache();
      // A rollback first, so that the chain also reads a past with holes.
      await decoder.forward([{ cache: chained, tokens: [...prompt.slice(0, 3), 9, 9] }]);
      chained.rollback(3);
      const drafts = await decoder.draftChain({ cache: chained, tokens: prompt.slice(3) }, k);
      expect(drafts).toEqual(expected);
      expect(chained.length).toBe(prompt.length + k - 1);

      const next = [7];
      const a = (await decoder.forward([{ cache: stepwise, tokens: next }]))[0][0];
      const b = (await decoder.forward([{ cache: chained, tokens: next }]))[0][0];
      expect(maxDiff(a, b)).toBeLessThan(dtype === 'fp32' ? 1e-4 : 1e-2);
    }
  });
});

describe.each(['fp32', 'fp16', 'int8'] as const)('fused speculative step (%s)', (dtype) => {
  let target: Decoder;
  let draft: Decoder;
  beforeAll(async () => {
    const dir = tinyModel({ seed: 5, numLayers: 3 }, ['fp16', 'int8']);
    target = await Decoder.open(dir, { dtype });
    draft = await Decoder.open(earlyExitDraft(dir, 1), { dtype: 'fp32' });
  });
  afterAll(async () => {
    await draft.close();
    await target.close();
  });

  it('drafts, verifies and leaves both caches as a draft chain and a separate target pass do', async () => {
    expect(draft.canFuseWith(target)).toBe(true);
    for (const k of [1, 3, 5]) {
      const prompt = [1, 20 + k, 30, 40, 50];
      // Apart: the chain, then the target over the pending token and the drafts.
      const draftA = draft.newCache();
      const targetA = target.newCache();
      await target.forward([{ cache: targetA, tokens: prompt.slice(0, -1) }]);
      const draftsA = await draft.draftChain({ cache: draftA, tokens: prompt }, k);
      const logitsA = (await target.forward([{ cache: targetA, tokens: [prompt[4], ...draftsA] }]))[0];

      // Fused, after a rollback in each cache so that both pasts have holes.
      const draftB = draft.newCache();
      const targetB = target.newCache();
      await draft.forward([{ cache: draftB, tokens: [...prompt.slice(0, 2), 9, 9] }]);
      draftB.rollback(2);
      await target.forward([{ cache: targetB, tokens: [...prompt.slice(0, 3), 8] }]);
      targetB.rollback(3);
      await target.forward([{ cache: targetB, tokens: [prompt[3]] }]);
      const before = target.numForwards;
      const { drafts, logits } = await draft.speculativeStep(target, { cache: draftB, tokens: prompt.slice(2) }, targetB, prompt[4], k);
      expect(target.numForwards - before).toBe(1);
      expect(drafts).toEqual(draftsA);
      expect(logits.length).toBe(k + 1);
      const tol = dtype === 'fp32' ? 1e-4 : 2e-2;
      logits.forEach((row, i) => expect(maxDiff(row, logitsA[i])).toBeLessThan(tol));
      expect(draftB.length).toBe(draftA.length);
      expect(targetB.length).toBe(targetA.length);

      // Both caches continue alike.
      const next = [7];
      expect(maxDiff((await draft.forward([{ cache: draftA, tokens: next }]))[0][0], (await draft.forward([{ cache: draftB, tokens: next }]))[0][0])).toBeLessThan(1e-4);
      targetA.rollback(targetA.length - 1);
      targetB.rollback(targetB.length - 1);
      expect(maxDiff((await target.forward([{ cache: targetA, tokens: next }]))[0][0], (await target.forward([{ cache: targetB, tokens: next }]))[0][0])).toBeLessThan(tol);
    }
  });

  it('a sampled step draws each draft by inverse CDF from softmax(logits / T) and returns those q and the target\'s p', async () => {
    // (A high temperature: this random-weight model's logits are large, and at T = 2 its draws were all one token.)
    const T = 20;
    const unfiltered: SamplingParams = { temperature: T, topK: 0, topP: 1, minP: 0 };
    for (const k of [1, 3]) {
      const prompt = [1, 20 + k, 30, 40, 50];
      const draftCache = draft.newCache();
      const targetCache = target.newCache();
      await target.forward([{ cache: targetCache, tokens: prompt.slice(0, -1) }]);
      const uniforms = Array.from({ length: k }, (_, i) => (0.13 + 0.29 * i + 0.07 * k) % 1);
      const { drafts, logits, draftProbs, targetProbs } = await draft.speculativeStep(target, { cache: draftCache, tokens: prompt },
        targetCache, prompt[4], k, { temperature: T, uniforms });
      expect(draftProbs).toHaveLength(k);
      expect(targetProbs).toHaveLength(k + 1);
      // The draft's q at each step, from single passes over the prompt and the drafts before it.
      const stepwise = draft.newCache();
      let row = (await draft.forward([{ cache: stepwise, tokens: prompt }]))[0].at(-1)!;
      for (let i = 0; i < k; i++) {
        expect(maxDiff(draftProbs![i], probabilities(row, unfiltered))).toBeLessThan(1e-5);
        expect(Math.max(...draftProbs![i])).toBeLessThan(0.5); // a real draw, not an argmax in disguise
        expect(drafts[i]).toBe(inverseCdf(draftProbs![i], uniforms[i]));
        if (i < k - 1) row = (await draft.forward([{ cache: stepwise, tokens: [drafts[i]] }]))[0][0];
      }
      targetProbs!.forEach((p, i) => expect(maxDiff(p, probabilities(logits[i], unfiltered))).toBeLessThan(1e-5));
      expect(draftCache.length).toBe(prompt.length + k - 1);
      expect(targetCache.length).toBe(prompt.length + k);
    }
    // Different uniforms draw differently.
    const draws = new Set<number>();
    for (const u of [0.02, 0.3, 0.6, 0.98]) {
      const cache = draft.newCache();
      const targetCache = target.newCache();
      const { drafts } = await draft.speculativeStep(target, { cache, tokens: [1, 2, 3] }, targetCache, 3, 1, { temperature: T, uniforms: [u] });
      draws.add(drafts[0]);
    }
    expect(draws.size).toBeGreaterThan(1);
  });
});

/** The first token whose float32 running sum of `q` reaches u, as the graph's CumSum and GreaterOrEqual find it. */
function inverseCdf(q: Float32Array, u: number): number {
  let cumulative = 0;
  for (let v = 0; v < q.length; v++) {
    cumulative = Math.fround(cumulative + q[v]);
    if (cumulative >= Math.fround(u)) return v;
  }
  return 0;
}
