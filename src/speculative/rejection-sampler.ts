// Lossless speculative sampling (Leviathan et al. 2023, "Fast Inference from Transformers via Speculative
// Decoding"; Chen et al. 2023, "Accelerating Large Language Model Decoding with Speculative Sampling").
//
// Words used throughout the engine:
//   draft     - the k tokens a proposer suggests, with its distributions q_1..q_k (a point mass when the proposer has
//               no distribution: n-gram lookup, Predicted Outputs);
//   target    - the model whose output we must reproduce; one forward pass scores all k+1 positions, giving p_1..p_{k+1};
//   accepted  - draft token x_i is kept with probability min(1, p_i(x_i) / q_i(x_i)), in order, until the first rejection;
//   recovered - on rejection at i, the replacement drawn from normalize(max(0, p_i - q_i));
//   bonus     - when all k drafts are accepted, one more token drawn from p_{k+1}.
// Every step therefore emits accepted + 1 tokens, distributed exactly as sampling from the target alone. With greedy
// decoding p is a point mass on the target's argmax, so this reduces to "longest prefix equal to the target's argmax,
// then the target's own next token".
import type { Rng } from '../runtime/rng.ts';
import { sampleFrom } from '../runtime/sampling.ts';

export interface VerificationResult {
  /** Number of draft tokens accepted (0..k). */
  numAccepted: number;
  /** accepted drafts followed by the recovered or bonus token. */
  tokens: number[];
}

/**
 * @param draft       k proposed tokens
 * @param draftProbs  q_1..q_k over the vocabulary, or null for point-mass proposers
 * @param targetProbs p_1..p_{k+1} over the vocabulary, after the request's temperature / top-k / top-p
 */
export function verify(draft: number[], draftProbs: Float32Array[] | null, targetProbs: Float32Array[], rng: Rng): VerificationResult {
  const k = draft.length;
  if (targetProbs.length !== k + 1) throw new Error(`verify: ${targetProbs.length} target rows for ${k} draft tokens (need k + 1)`);
  if (draftProbs && draftProbs.length !== k) throw new Error(`verify: ${draftProbs.length} draft distributions for ${k} tokens`);
  const tokens: number[] = [];
  for (let i = 0; i < k; i++) {
    const x = draft[i];
    const p = targetProbs[i];
    const q = draftProbs ? draftProbs[i][x] : 1;
    if (acceptDraftToken(p[x], q, rng)) {
      tokens.push(x);
      continue;
    }
    tokens.push(sampleFrom(residual(p, draftProbs ? draftProbs[i] : null, x), rng));
    return { numAccepted: i, tokens };
  }
  tokens.push(sampleFrom(targetProbs[k], rng));
  return { numAccepted: k, tokens };
}

/**
 * `verify` for a greedy target, from the target's argmax at each of the k + 1 positions: the longest draft prefix
 * equal to them, then the target's own next token. Whatever the draft's q, this is what `verify` returns for point-mass
 * p (accept iff x is the argmax; the residual of a point mass is itself), without a distribution over the vocabulary.
 */
export function verifyGreedy(draft: number[], targetArgmax: number[]): VerificationResult {
  if (targetArgmax.length !== draft.length + 1) throw new Error(`verifyGreedy: ${targetArgmax.length} target rows for ${draft.length} draft tokens (need k + 1)`);
  let accepted = 0;
  while (accepted < draft.length && draft[accepted] === targetArgmax[accepted]) accepted++;
  return { numAccepted: accepted, tokens: [...draft.slice(0, accepted), targetArgmax[accepted]] };
}

/** min(1, p/q); certain outcomes (p >= q, or p = 0) draw no random number, so greedy never touches the RNG. */
export function acceptDraftToken(p: number, q: number, rng: Rng): boolean {
  if (p >= q) return true;
  if (p <= 0) return false;
  return rng.next() < p / q;
}

/** normalize(max(0, p - q)); q is the point mass on `x` when null. Falls back to p if the residual has no mass. */
export function residual(p: Float32Array, q: Float32Array | null, x: number): Float32Array {
  const out = new Float32Array(p.length);
  let sum = 0;
  for (let v = 0; v < p.length; v++) {
    const d = p[v] - (q ? q[v] : v === x ? 1 : 0);
    if (d > 0) sum += out[v] = d;
  }
  if (sum <= 0) return p; // p == q exactly: rejection had probability 0, any draw from p is consistent
  for (let v = 0; v < out.length; v++) out[v] /= sum;
  return out;
}
