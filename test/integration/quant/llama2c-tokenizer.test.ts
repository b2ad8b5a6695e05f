// tokenizer.json written for stories260K encodes like llama2.c's run.c and round-trips text.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { Tokenizer } from '@huggingface/tokenizers';
import { llama2cToTokenizerJson, llamaTokenizerConfig, readLlama2cTokenizer } from '../../../src/forge/llama2c-tokenizer.ts';
import { llama2cEncode, loadLlama2cVocab } from '../../helpers/llama2c-encode.ts';
import { requireSharedModels, stories } from '../../helpers/shared-models.ts';

requireSharedModels('llama2.c tokenizer conversion');

const TEXTS = [
  'Once upon a time',
  'Once upon a time, there was a little girl named Lily.',
  'The cat sat on the mat. Tom and Sue went to the shop!',
  '  leading and  double  spaces\nand a newline\ttab',
  'héllo wörld ☃ 日本語 🙂', // non-ASCII: byte fallback for characters outside the 512-token vocabulary
  'Numbers 12345 and symbols #$%&*()[]{}',
  'x',
];

describe('tokenizer.json from tok512.bin', () => {
  let tokenizer: Tokenizer;
  let vocab: ReturnType<typeof loadLlama2cVocab>;
  beforeAll(() => {
    const v = readLlama2cTokenizer(readFileSync(stories.tokenizer), 512);
    tokenizer = new Tokenizer(llama2cToTokenizerJson(v), llamaTokenizerConfig(512));
    vocab = loadLlama2cVocab(stories.tokenizer);
  });

  it.each(TEXTS)('encodes %j like llama2.c (after BOS)', (text) => {
    const ids = tokenizer.encode(text).ids;
    expect(ids[0]).toBe(1);
    expect(ids.slice(1)).toEqual(llama2cEncode(vocab, text));
  });

  it.each(TEXTS)('round-trips %j', (text) => {
    expect(tokenizer.decode(tokenizer.encode(text).ids, { skip_special_tokens: true })).toBe(text);
  });

  it('falls back to bytes for characters outside the vocabulary', () => {
    const ids = tokenizer.encode('☃', { add_special_tokens: false }).ids;
    // U+2603 is E2 98 83 in UTF-8; byte tokens are byte + 3.
    expect(ids.slice(-3)).toEqual([0xe2 + 3, 0x98 + 3, 0x83 + 3]);
  });

  it('refuses a tokenizer whose size differs from the model vocabulary', () => {
    expect(() => readLlama2cTokenizer(readFileSync(stories.tokenizer), 32000)).toThrow(/512 tokens but the model's vocab_size is 32000/);
  });
});
