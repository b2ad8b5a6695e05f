// A ragged batch near the context limit: each row is checked against the limit with its own length and new tokens, not
// the batch's longest cache plus its widest row, and rows padded past the limit feed positions the rotary table has.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

const LIMIT = 256; // the tiny preset's max_position_embeddings
const ids = (n: number, seed: number) => Array.from({ length: n }, (_, i) => 3 + ((i * 37 + seed * 101) % 500));

describe.each([true, false])('a ragged batch at the context limit (appended KV: %s)', (appendKv) => {
  let dir: string;
  let decoder: Decoder;
  beforeAll(async () => {
    dir = tinyModel({ seed: 21, numLayers: 2 });
    decoder = await Decoder.open(dir, { appendKv });
  });
  afterAll(() => decoder.close());

  it('runs a row at the limit beside a wide row, each equal to itself alone', async () => {
    const near = ids(LIMIT - 1, 1); // 255 positions: one more token fits
    const wide = ids(30, 2);
    const alone = async (prompt: number[], next: number[]) => {
      const cache = decoder.newCache();
      await decoder.forward([{ cache, tokens: prompt }]);
      return (await decoder.forward([{ cache, tokens: next }]))[0].map((l) => l.slice());
    };
    const expectNear = await alone(near, [7]);
    const expectWide = await alone(wide.slice(0, 10), wide.slice(10));
    const a = decoder.newCache();
    const b = decoder.newCache();
    await decoder.forward([{ cache: a, tokens: near }]);
    await decoder.forward([{ cache: b, tokens: wide.slice(0, 10) }]);
    // 255 + 1 fits, 10 + 20 fits; the old check added the longest cache (255) to the widest row (20).
    const [rowA, rowB] = await decoder.forward([{ cache: a, tokens: [7] }, { cache: b, tokens: wide.slice(10) }]);
    expect(maxDiff(rowA[0], expectNear[0])).toBeLessThan(1e-4);
    rowB.forEach((l, i) => expect(maxDiff(l, expectWide[i])).toBeLessThan(1e-4));
    expect([a.length, b.length]).toEqual([LIMIT, 30]);
  });

  it('still refuses a row that would pass the limit itself, naming it', async () => {
    const a = decoder.newCache();
    await decoder.forward([{ cache: a, tokens: ids(LIMIT - 1, 3) }]);
    await expect(decoder.forward([{ cache: a, tokens: [1, 2] }, { cache: decoder.newCache(), tokens: [1] }]))
      .rejects.toThrow(/row 0: 257 positions exceed the model's 256/);
  });
});

describe('the engine with a request that ends at the context limit beside speculating ones', () => {
  it('finishes every request as the target alone would (no request fails for another\'s length)', async () => {
    const dir = tinyModel({ seed: 11, numLayers: 3 });
    const target = await Decoder.open(dir);
    const tokenizer = TextTokenizer.load(dir);
    const draft = await Decoder.open(earlyExitDraft(dir, 1));
    const requests: GenerationRequest[] = [
      { promptIds: ids(LIMIT - 6, 4), maxTokens: 40, sampling: GREEDY, stop: [] }, // runs into the limit after 6 tokens
      { promptIds: ids(12, 5), maxTokens: 40, sampling: GREEDY, stop: [] },
      { promptIds: ids(3, 6), maxTokens: 40, sampling: GREEDY, stop: [] },
    ];
    const expected = [];
    for (const r of requests) expected.push(await generate(target, tokenizer, r.promptIds, { maxTokens: r.maxTokens, sampling: GREEDY }));
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 4,
      adaptiveDraftLength: false, disableSpeculationAtBatch: 0, maxBatch: 8, maxQueue: 16 });
    const got = await Promise.all(requests.map((r) => collect(engine, r)));
    expect(got.map((g) => g.tokens)).toEqual(expected.map((e) => e.tokens));
    expect(got[0].finishReason).toBe('length');
    expect(got[0].tokens.length).toBe(6);
    expect(got[1].numDrafted).toBeGreaterThan(0);
    await engine.close();
    await draft.close();
    await target.close();
  });
});
