// Draft chains (k greedy draft steps in one session.run) against drafting one forward pass at a time: the same
// tokens, and a KV cache that continues exactly as if the drafts had been fed one by one. Fused speculative steps
// (a chain and the target's verification in one session.run) against a chain and a separate target pass.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { argmax } from '../../../src/runtime/sampling.ts';
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
});
