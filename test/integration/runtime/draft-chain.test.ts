// Draft chains (k greedy draft steps in one session.run) against drafting one forward pass at a time: the same
// tokens, and a KV cache that continues exactly as if the drafts had been fed one by one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { argmax } from '../../../src/runtime/sampling.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

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
