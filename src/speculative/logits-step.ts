// The logits step, one place for it: rows of logits masked by their constraint (where the request has one), and for
// rows of sampled requests their distribution under the request's temperature and cut-offs, computed in one batch
// (runtime/batch-softmax.ts). The prefill's first token, the draft's tokens and the verifier's rows all come from it.
import { argmax, isGreedy, sampleFrom, type SamplingParams } from '../runtime/sampling.ts';
import type { Rng } from '../runtime/rng.ts';
import { rowProbabilities } from '../runtime/batch-softmax.ts';
import { maskLogits } from '../runtime/structured/token-bitmask.ts';

export interface LogitsRow {
  logits: Float32Array;
  /** The constraint's token bitmask at this position (runtime/structured/token-bitmask.ts); absent: any. */
  allowed?: Int32Array;
  sampling: SamplingParams;
}

/** Each row masked, and the distribution of each sampled one (null for greedy rows, which take the argmax). */
export async function logitsStep(rows: LogitsRow[]): Promise<{ masked: Float32Array[]; probs: (Float32Array | null)[] }> {
  const masked = rows.map((r) => (r.allowed ? maskLogits(r.logits, r.allowed) : r.logits));
  const sampled = rows.flatMap((r, i) => (isGreedy(r.sampling) ? [] : [i]));
  const probs: (Float32Array | null)[] = rows.map(() => null);
  if (sampled.length > 0) {
    const computed = await rowProbabilities(sampled.map((i) => masked[i]), sampled.map((i) => rows[i].sampling));
    sampled.forEach((i, n) => (probs[i] = computed[n]));
  }
  return { masked, probs };
}

/** The next token of a row of logitsStep: its argmax, or a draw from its distribution with the request's RNG. */
export function pickToken(masked: Float32Array, probs: Float32Array | null, rng: Rng): number {
  return probs ? sampleFrom(probs, rng) : argmax(masked);
}
