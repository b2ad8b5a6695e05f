// Sampling as pure functions over logits. `probabilities` is the one place where temperature, top-k, top-p and min-p
// are applied, so that plain decoding and speculative verification sample from exactly the same distribution.
import type { Rng } from './rng.ts';

export interface SamplingParams {
  /** 0 means greedy. */
  temperature: number;
  /** 0 disables top-k. */
  topK: number;
  /** 1 disables top-p. */
  topP: number;
  /** 0 disables min-p. */
  minP: number;
}

export const GREEDY: SamplingParams = { temperature: 0, topK: 0, topP: 1, minP: 0 };

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature === 0 || p.topK === 1;
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}

/**
 * The distribution a token is drawn from: softmax(logits / T) restricted to top-k, then to the smallest nucleus with
 * mass >= top-p, then to tokens with p >= min-p * p_max, renormalised. Greedy is a point mass on the argmax.
 */
export function probabilities(logits: Float32Array, p: SamplingParams, out = new Float32Array(logits.length)): Float32Array {
  out.fill(0);
  if (isGreedy(p)) {
    out[argmax(logits)] = 1;
    return out;
  }
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp((logits[i] - max) / p.temperature);
  for (let i = 0; i < logits.length; i++) out[i] /= sum;

  const truncating = (p.topK > 0 && p.topK < logits.length) || p.topP < 1 || p.minP > 0;
  if (!truncating) return out;
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

/** Inverse-CDF draw from a probability vector; a point mass draws no random number (greedy leaves the RNG alone). */
export function sampleFrom(probs: Float32Array, rng: Rng): number {
  let support = -1;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    if (support >= 0) {
      support = -2;
      break;
    }
    support = i;
  }
  if (support >= 0) return support;
  const u = rng.next();
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probs.length; i++) {
    if (probs[i] <= 0) continue;
    cumulative += probs[i];
    last = i;
    if (u < cumulative) return i;
  }
  return last; // rounding: u landed beyond the summed mass
}

export function sampleToken(logits: Float32Array, p: SamplingParams, rng: Rng): number {
  return isGreedy(p) ? argmax(logits) : sampleFrom(probabilities(logits, p), rng);
}

export interface TokenLogprob {
  id: number;
  logprob: number;
}

/** log-softmax of the raw logits (OpenAI reports logprobs of the model's distribution, before sampling filters). */
export function logprobOf(logits: Float32Array, id: number): number {
  return logits[id] - logSumExp(logits);
}

export function topLogprobs(logits: Float32Array, n: number): TokenLogprob[] {
  if (n <= 0) return [];
  const lse = logSumExp(logits);
  const best: TokenLogprob[] = [];
  for (let i = 0; i < logits.length; i++) {
    if (best.length < n || logits[i] > best[best.length - 1].logprob + lse) {
      best.push({ id: i, logprob: logits[i] - lse });
      best.sort((a, b) => b.logprob - a.logprob || a.id - b.id);
      if (best.length > n) best.pop();
    }
  }
  return best;
}

function logSumExp(logits: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  return max + Math.log(sum);
}
