// XGrammar's token bitmasks: bit (id & 31) of word (id >> 5) is set where token `id` is allowed.

export function allows(mask: Int32Array, id: number): boolean {
  return ((mask[id >> 5] >>> (id & 31)) & 1) === 1;
}

/** A mask allowing only `ids`. */
export function maskOf(ids: number[], vocabSize: number): Int32Array {
  const mask = new Int32Array(Math.ceil(vocabSize / 32));
  for (const id of ids) mask[id >> 5] |= 1 << (id & 31);
  return mask;
}

/** Sets disallowed logits to -Infinity (a copy: the raw logits still serve logprobs). Logits beyond the mask's
 * vocabulary (a model whose logits outnumber its tokenizer's tokens) are disallowed. */
export function maskLogits(logits: Float32Array, mask: Int32Array): Float32Array {
  // A copy (one memcpy), then -Infinity where a word is not all ones: most words of most masks are all ones (inside a
  // string) or all zeros (between a document's tokens), and those cost one comparison or one fill.
  const out = logits.slice();
  const words = Math.ceil(logits.length / 32);
  for (let w = 0; w < words; w++) {
    const bits = w < mask.length ? mask[w] : 0;
    if (bits === -1) continue;
    const base = w << 5;
    const end = Math.min(base + 32, logits.length);
    if (bits === 0) {
      out.fill(-Infinity, base, end);
      continue;
    }
    for (let i = base; i < end; i++) if (((bits >>> (i - base)) & 1) === 0) out[i] = -Infinity;
  }
  return out;
}

/** The argmax of `logits` over the tokens `mask` allows, without a masked copy: argmax(maskLogits(logits, mask))
 * wherever an allowed logit is above -Infinity (the first of equal maxima). Where none is, the first allowed token;
 * where the mask allows none, 0 (what that argmax gives: a token the grammar refuses when it is committed, which
 * fails the request). */
export function maskedArgmax(logits: Float32Array, mask: Int32Array): number {
  let best = -1;
  let bestValue = -Infinity;
  let firstAllowed = -1;
  const words = Math.min(mask.length, Math.ceil(logits.length / 32));
  for (let w = 0; w < words; w++) {
    const bits = mask[w];
    if (bits === 0) continue;
    const base = w << 5;
    const end = Math.min(base + 32, logits.length);
    for (let i = base; i < end; i++) {
      if (((bits >>> (i - base)) & 1) === 0) continue;
      if (firstAllowed < 0) firstAllowed = i;
      if (logits[i] > bestValue) {
        bestValue = logits[i];
        best = i;
      }
    }
  }
  return best >= 0 ? best : Math.max(firstAllowed, 0);
}
