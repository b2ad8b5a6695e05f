// Top-k / top-p / min-p as first written: sort the whole vocabulary, then cut. The reference that the runtime's
// bucketed version (runtime/sampling.ts) must reproduce exactly (unit test), and its speed baseline (bench:sampling).
import { probabilities, type SamplingParams } from '../../src/runtime/sampling.ts';

export function fullSortProbabilities(logits: Float32Array, p: SamplingParams): Float32Array {
  const truncating = (p.topK > 0 && p.topK < logits.length) || p.topP < 1 || p.minP > 0;
  if (!truncating || p.temperature === 0 || p.topK === 1) return probabilities(logits, p);
  const out = probabilities(logits, { ...p, topK: 0, topP: 1, minP: 0 });
  const order = Array.from(out.keys()).sort((a, b) => out[b] - out[a] || a - b);
  let keep = p.topK > 0 ? Math.min(p.topK, order.length) : order.length;
  if (p.topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += out[order[i]];
      if (mass >= p.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p.minP > 0) {
    const floor = p.minP * out[order[0]];
    while (keep > 1 && out[order[keep - 1]] < floor) keep--;
  }
  let kept = 0;
  for (let i = 0; i < keep; i++) kept += out[order[i]];
  for (let i = keep; i < order.length; i++) out[order[i]] = 0;
  for (let i = 0; i < keep; i++) out[order[i]] /= kept;
  return out;
}
