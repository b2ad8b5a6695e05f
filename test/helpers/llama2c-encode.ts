// The tokenizer algorithm of llama2.c's run.c (encode), written again here as the oracle for tokenizer.json:
// dummy-prefix space, per-codepoint lookup with byte fallback (id = byte + 3), then greedy highest-score merges.
import { readFileSync } from 'node:fs';

export function loadLlama2cVocab(path: string): { pieces: string[]; scores: number[] } {
  const buf = readFileSync(path);
  const pieces: string[] = [];
  const scores: number[] = [];
  for (let o = 4; o < buf.length;) {
    scores.push(buf.readFloatLE(o));
    const len = buf.readInt32LE(o + 4);
    pieces.push(buf.subarray(o + 8, o + 8 + len).toString('utf8'));
    o += 8 + len;
  }
  return { pieces, scores };
}

export function llama2cEncode(vocab: { pieces: string[]; scores: number[] }, text: string): number[] {
  const lookup = new Map<string, number>();
  vocab.pieces.forEach((p, i) => {
    if (!lookup.has(p)) lookup.set(p, i);
  });
  const tokens: number[] = [];
  if (text.length > 0) tokens.push(lookup.get(' ')!);
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const byte of Buffer.from(ch, 'utf8')) tokens.push(byte + 3);
  }
  for (;;) {
    let bestScore = -1e10;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(vocab.pieces[tokens[i]] + vocab.pieces[tokens[i + 1]]);
      if (id !== undefined && vocab.scores[id] > bestScore) {
        bestScore = vocab.scores[id];
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  return tokens;
}
