// A deterministic vocabulary for random-weight models: special tokens, 256 byte-fallback tokens, then lowercase
// words of increasing length (every piece reachable through merges), so that any text encodes and decodes.
import type { Llama2cVocab } from './llama2c-tokenizer.ts';

const ALPHABET = Array.from(' abcdefghijklmnopqrstuvwxyz');
export const MIN_SYNTHETIC_VOCAB = 3 + 256 + ALPHABET.length;

export function syntheticVocab(vocabSize: number): Llama2cVocab {
  if (vocabSize < MIN_SYNTHETIC_VOCAB) throw new Error(`vocab must be at least ${MIN_SYNTHETIC_VOCAB} for the synthetic tokenizer`);
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n'];
  for (let b = 0; b < 256; b++) pieces.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  let layer = [...ALPHABET];
  outer: while (true) {
    for (const p of layer) {
      if (pieces.length === vocabSize) break outer;
      pieces.push(p);
    }
    layer = layer.flatMap((p) => ALPHABET.map((ch) => p + ch));
  }
  return { maxTokenLength: Math.max(...pieces.map((p) => p.length)), pieces, scores: pieces.map((_, i) => (i < 259 ? 0 : -i)) };
}
