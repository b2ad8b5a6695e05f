// Top-k / top-p / min-p as first written: sort the whole vocabulary, then cut (the same cut rules, keptLength, on the
// full order). The reference that the runtime's bucketed head of the order (runtime/sampling.ts) must reproduce
// exactly (unit test), and its speed baseline (bench:sampling).
import { isGreedy, keptLength, probabilities, truncates, type SamplingParams } from '../../src/runtime/sampling.ts';

export function fullSortProbabilities(logits: Float32Array, p: SamplingParams): Float32Array {
  if (!truncates(p, logits.length) || isGreedy(p)) return probabilities(logits, p);
  const out = probabilities(logits, { ...p, topK: 0, topP: 1, minP: 0 });
  const order = Array.from(out.keys()).sort((a, b) => out[b] - out[a] || a - b);
  const keep = keptLength(out, order, p);
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += out[order[i]];
  for (let i = keep; i < order.length; i++) out[order[i]] = 0;
  for (let i = 0; i < keep; i++) out[order[i]] /= kept;
  return out;
}
