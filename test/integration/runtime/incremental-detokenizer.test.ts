// Streaming detokenization on the synthetic byte-fallback tokenizer of a random model.
import { describe, expect, it } from 'vitest';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { IncrementalDetokenizer } from '../../../src/runtime/incremental-detokenizer.ts';
import { GenerationOutput } from '../../../src/runtime/generation-output.ts';
import { storiesModel, tinyModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

describe('IncrementalDetokenizer', () => {
  const tokenizer = TextTokenizer.load(tinyModel());

  it.each(['hello world', 'naïve café ☃ 日本 🙂', '  spaced  out\nnew line'])('streams %j piece by piece to the full decode, never emitting half a character', (text) => {
    const prompt = tokenizer.encode('start here');
    const ids = tokenizer.encode(text, false);
    const d = new IncrementalDetokenizer(tokenizer, prompt);
    const pieces = ids.map((id) => d.push(id));
    pieces.push(d.flush());
    expect(pieces.some((p) => p.includes('\uFFFD'))).toBe(false);
    expect(pieces.join('')).toBe(tokenizer.decode([...prompt, ...ids]).slice(tokenizer.decode(prompt).length));
    // multi-byte characters arrive as byte tokens: some pushes must have held text back
    if (/[^\x00-\x7f]/.test(text)) expect(pieces.filter((p) => p === '').length).toBeGreaterThan(0);
  });

  it('GenerationOutput applies max_tokens, EOS and stop strings', () => {
    const limits = { maxTokens: 3, stop: [], eosTokenIds: [2] };
    const out = new GenerationOutput(tokenizer, [1], limits);
    const ids = tokenizer.encode('abc def ghi', false);
    ids.slice(0, 3).forEach((id) => out.push(id));
    expect(out.finishReason).toBe('length');
    expect(out.text).toBe(tokenizer.decode(ids.slice(0, 3)));
    const eos = new GenerationOutput(tokenizer, [1], { ...limits, maxTokens: 10 });
    eos.push(ids[0]);
    eos.push(2);
    expect(eos.finishReason).toBe('stop');
    expect(eos.tokens).toEqual([ids[0]]);
    expect(() => eos.push(3)).toThrow(/after the sequence finished/);
  });
});

describe('IncrementalDetokenizer fast path (pieces appended without decoding)', () => {
  const tokenizers: Record<string, TextTokenizer> = { 'synthetic byte-fallback vocabulary': TextTokenizer.load(tinyModel()) };
  if (requireSharedModels('the fast detokenizer on the stories260K tokenizer')) tokenizers['stories260K (Llama 2 SentencePiece)'] = TextTokenizer.load(storiesModel());
  it.each(Object.keys(tokenizers))('%s: emits exactly what window decoding emits, token by token', (name) => {
    const tokenizer = tokenizers[name];
    expect(tokenizer.streamingPieces()).not.toBeNull();
    let seed = 1;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const texts = ['Once upon a time, there was a little girl.', 'naïve café ☃ 日本 🙂', '  two  spaces\nand a line'];
    for (let trial = 0; trial < 60; trial++) {
      // Real text, random ids (byte tokens, specials) or a mix; prompts with and without text before.
      const text = texts[trial % texts.length];
      const ids = trial % 3 === 0 ? tokenizer.encode(text, false)
        : Array.from({ length: 40 }, () => (trial % 3 === 1 ? rand(tokenizer.vocabSize) : (rand(2) ? rand(tokenizer.vocabSize) : tokenizer.encode(text, false)[rand(5)])));
      const context = trial % 2 ? tokenizer.encode('Lily said') : [1];
      const fast = new IncrementalDetokenizer(tokenizer, context);
      const slow = new IncrementalDetokenizer(tokenizer, context, { fast: false });
      for (const id of ids) expect(fast.push(id)).toBe(slow.push(id));
      expect(fast.flush()).toBe(slow.flush());
    }
  });
});
