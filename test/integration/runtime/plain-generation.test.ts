// Plain generation through the runtime: stories260K's oracle continuation, seeds, top-p, hooks.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels, STORIES_ORACLE_IDS } from '../../helpers/shared-models.ts';

requireSharedModels('plain generation of stories260K');

describe('plain generation of stories260K', () => {
  let decoder: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = storiesModel();
    decoder = await Decoder.open(dir);
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(() => decoder.close());

  it('greedy from "Once upon a time" continues exactly as PROVENANCE.md says', async () => {
    const prompt = tokenizer.encode('Once upon a time');
    expect(prompt).toEqual([1, ...STORIES_ORACLE_IDS.slice(0, 4)]);
    const prefills: number[] = [];
    const decodes: number[] = [];
    const r = await generate(decoder, tokenizer, prompt, {
      maxTokens: 60, sampling: GREEDY,
      hooks: { onPrefill: (_s, n) => prefills.push(n), onDecode: (s) => decodes.push(s) },
    });
    expect(r.tokens).toEqual(STORIES_ORACLE_IDS.slice(4, 64));
    expect(r.text).toMatch(/^, there was a little girl named Lily\. She loved to play outside in the park\./);
    expect(r.finishReason).toBe('length');
    expect(prefills).toEqual([5]); // one prefill pass over the whole prompt
    expect(decodes).toHaveLength(59); // then one pass per further token
    expect(decodes.every((s) => s > 0)).toBe(true);
  });

  const sampled = { temperature: 1, topK: 0, topP: 1, minP: 0 };
  it('the same seed gives the same sampled text; different seeds differ', async () => {
    const prompt = tokenizer.encode('Once upon a time');
    const a = await generate(decoder, tokenizer, prompt, { maxTokens: 40, sampling: sampled, seed: 1234 });
    const b = await generate(decoder, tokenizer, prompt, { maxTokens: 40, sampling: sampled, seed: 1234 });
    const others = await Promise.all([1, 2, 3].map((seed) => generate(decoder, tokenizer, prompt, { maxTokens: 40, sampling: sampled, seed })));
    expect(b.text).toBe(a.text);
    expect(others.every((o) => o.text !== a.text)).toBe(true);
  });

  it('top_p tiny behaves as greedy', async () => {
    const prompt = tokenizer.encode('Once upon a time');
    const r = await generate(decoder, tokenizer, prompt, { maxTokens: 30, sampling: { ...sampled, topP: 1e-6 }, seed: 9 });
    expect(r.tokens).toEqual(STORIES_ORACLE_IDS.slice(4, 34));
  });

  it('stops at a stop string spanning tokens, and at EOS', async () => {
    const prompt = tokenizer.encode('Once upon a time');
    const r = await generate(decoder, tokenizer, prompt, { maxTokens: 60, sampling: GREEDY, stop: ['named Li'] });
    expect(r.text).toBe(', there was a little girl ');
    expect(r.finishReason).toBe('stop');
  });
});
