// The logits step, one place for it: over what each row's constraint allows (where the request has one), a greedy
// row's token, and a sampled row's distribution under the request's temperature and cut-offs, computed in one batch
// (runtime/batch-softmax.ts). The prefill's first token, the draft's tokens and the verifier's rows all come from it.
import { argmax, isGreedy, sampleFrom, type SamplingParams } from '../runtime/sampling.ts';
import type { Rng } from '../runtime/rng.ts';
import { rowProbabilities } from '../runtime/batch-softmax.ts';
import { maskedArgmax, maskLogits } from '../runtime/structured/token-bitmask.ts';

export interface LogitsRow {
  logits: Float32Array;
  /** The constraint's token bitmask at this position (runtime/structured/token-bitmask.ts); absent: any. */
  allowed?: Int32Array;
  sampling: SamplingParams;
}

/** Per row: for a greedy one its token (the argmax over the allowed tokens: no masked copy of the row is made), for
 * a sampled one its distribution (over the allowed tokens), computed in one batch. */
export interface LogitsPicks {
  greedy: number[];
  probs: (Float32Array | null)[];
}

export async function logitsStep(rows: LogitsRow[]): Promise<LogitsPicks> {
  const greedy = rows.map((r) => (!isGreedy(r.sampling) ? -1 : r.allowed ? maskedArgmax(r.logits, r.allowed) : argmax(r.logits)));
  const sampled = rows.flatMap((r, i) => (isGreedy(r.sampling) ? [] : [i]));
  const probs: (Float32Array | null)[] = rows.map(() => null);
  if (sampled.length > 0) {
    const masked = sampled.map((i) => (rows[i].allowed ? maskLogits(rows[i].logits, rows[i].allowed!) : rows[i].logits));
    const computed = await rowProbabilities(masked, sampled.map((i) => rows[i].sampling));
    sampled.forEach((i, n) => (probs[i] = computed[n]));
  }
  return { greedy, probs };
}

/** The next token of row `b` of a logits step: its argmax, or a draw from its distribution with the request's RNG. */
export function pickToken(step: LogitsPicks, b: number, rng: Rng): number {
  const probs = step.probs[b];
  return probs ? sampleFrom(probs, rng) : step.greedy[b];
}
