// A forge graph run with its attention bias fed from JS (graphs/bias-input.ts) against the same file run as it is,
// with Optimum's attention_mask: identical logits and caches through batched passes with left padding, right padding
// and rollback holes, for every dtype; a draft chain built from the derived graph agrees too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import type { KvCache } from '../../../src/runtime/kv-cache.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

describe.each(['fp32', 'fp16', 'int8'] as const)('attention bias fed from JS (%s)', (dtype) => {
  let fed: Decoder;
  let file: Decoder;
  beforeAll(async () => {
    const dir = tinyModel({ seed: 21, numLayers: 2 }, ['fp16', 'int8']);
    fed = await Decoder.open(dir, { dtype });
    file = await Decoder.open(dir, { dtype, biasInput: false });
  });
  afterAll(async () => {
    await fed.close();
    await file.close();
  });

  it('gives the logits the file gives, through batches with padding and holes', async () => {
    expect(fed.feedsAttentionBias).toBe(true);
    expect(file.feedsAttentionBias).toBe(false);
    const script = async (d: Decoder) => {
      const caches = [d.newCache(), d.newCache(), d.newCache()];
      const out: Float32Array[] = [];
      const pass = async (rows: { cache: KvCache; tokens: number[] }[]) => {
        for (const row of await d.forward(rows)) out.push(...row);
      };
      await pass([{ cache: caches[0], tokens: [1, 5, 9, 13, 17] }, { cache: caches[1], tokens: [1, 7] }, { cache: caches[2], tokens: [1, 2, 3] }]);
      await pass([{ cache: caches[0], tokens: [4, 4, 4] }, { cache: caches[1], tokens: [8] }, { cache: caches[2], tokens: [6, 6] }]);
      caches[0].rollback(6); // holes
      caches[2].rollback(4);
      await pass([{ cache: caches[1], tokens: [3, 3, 3, 3] }, { cache: caches[0], tokens: [2] }]);
      await pass([{ cache: caches[2], tokens: [9] }]);
      await pass([{ cache: caches[0], tokens: [5, 6] }, { cache: caches[1], tokens: [7] }, { cache: caches[2], tokens: [8, 9, 10] }]);
      return out;
    };
    const [a, b] = [await script(fed), await script(file)];
    expect(a.length).toBe(b.length);
    const tol = dtype === 'fp32' ? 1e-5 : 1e-2;
    a.forEach((row, i) => expect(maxDiff(row, b[i])).toBeLessThan(tol));
  });

  it('drafts the same tokens with a draft chain built from either graph', async () => {
    for (const k of [1, 3]) {
      const prompt = [1, 30 + k, 40, 50];
      const runs = await Promise.all([fed, file].map(async (d) => {
        const cache = d.newCache();
        return d.draftChain({ cache, tokens: prompt }, k);
      }));
      expect(runs[0]).toEqual(runs[1]);
    }
  });
});
