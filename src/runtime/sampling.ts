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

/** Temperatures below this are greedy (vLLM's _SAMPLING_EPS): dividing logits by a subnormal one overflows to
 * Infinity - Infinity = NaN, and anything this cold is an argmax anyway. */
export const MIN_TEMPERATURE = 1e-5;

export function isGreedy(p: SamplingParams): boolean {
  return p.temperature < MIN_TEMPERATURE || p.topK === 1;
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
  return applyCutoffs(out, p);
}

/** top-k, then top-p, then min-p, on softmax(logits / T) already computed (`out`, renormalized in place): the part of
 * `probabilities` after the softmax, for softmaxes computed elsewhere (runtime/batch-softmax.ts). */
export function applyCutoffs(out: Float32Array, p: SamplingParams): Float32Array {
  if (!truncates(p, out.length)) return out;
  if (out.length > ID_SPAN) throw new Error(`sampling: a vocabulary of ${out.length} tokens is over ${ID_SPAN}`);
  const order = sortedHead(out, p);
  const keep = keptLength(out, order, p);
  const kept = new Float32Array(keep);
  let total = 0;
  for (let i = 0; i < keep; i++) total += kept[i] = out[order[i]];
  out.fill(0);
  for (let i = 0; i < keep; i++) out[order[i]] = kept[i] / total;
  return out;
}

/** Whether top-k, top-p or min-p cut anything from a vocabulary of this size. */
export function truncates(p: SamplingParams, vocabSize: number): boolean {
  return (p.topK > 0 && p.topK < vocabSize) || p.topP < 1 || p.minP > 0;
}

/** How many of the tokens in `order` (most likely first) top-k, then top-p, then min-p keep. */
export function keptLength(probs: Float32Array, order: ArrayLike<number>, p: SamplingParams): number {
  let keep = p.topK > 0 ? Math.min(p.topK, order.length) : order.length;
  if (p.topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += probs[order[i]];
      if (mass >= p.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  if (p.minP > 0) {
    const floor = p.minP * probs[order[0]];
    while (keep > 1 && probs[order[keep - 1]] < floor) keep--;
  }
  return keep;
}

/**
 * The most likely tokens in order (probability descending, then id), as many as top-k, top-p and min-p can keep: a
 * head of the whole vocabulary's order, without sorting the whole vocabulary (a comparator sort of a real vocabulary
 * costs milliseconds a token). Probabilities are bucketed by their float32 exponent (each bucket spans a factor of two, so
 * every token of a higher bucket is more likely than every token of a lower one); buckets are taken from the top until
 * they hold top-k tokens or top-p of the mass (min-p alone: until a bucket lies wholly below min-p * p_max), and only
 * their tokens are sorted. Taking whole buckets keeps ties together, so the head is exactly the full order's.
 */
function sortedHead(probs: Float32Array, p: SamplingParams): number[] {
  const exponent = new Uint32Array(probs.buffer, probs.byteOffset, probs.length);
  const count = new Uint32Array(256);
  const mass = new Float64Array(256);
  let max = 0;
  for (let i = 0; i < probs.length; i++) {
    const e = exponent[i] >>> 23; // probabilities are >= 0: no sign bit
    count[e]++;
    mass[e] += probs[i];
    if (probs[i] > max) max = probs[i];
  }
  const byCount = p.topK > 0 && p.topK < probs.length;
  const byMass = p.topP < 1;
  const floor = p.minP * max;
  let lowest = 0;
  let n = 0;
  let m = 0;
  for (let e = 255; e > 0; e--) {
    if (!byCount && !byMass && 2 ** (e - 126) <= floor) {
      lowest = e + 1; // every value with exponent e is below 2^(e - 126), so below the min-p floor
      break;
    }
    n += count[e];
    m += mass[e];
    // (A margin on the mass: the order's own running sum may round below this one.)
    if ((byCount && n >= p.topK) || (byMass && m >= p.topP + 1e-9)) {
      lowest = e;
      break;
    }
  }
  // Sorted as numbers, without a comparator: each key is id - bits * 2^20 (a float32's bits order non-negative floats
  // as integers do), ascending = probability descending, then id ascending; exact in a double for ids below 2^20.
  let size = 0;
  for (let i = 0; i < probs.length; i++) if (exponent[i] >>> 23 >= lowest) size++;
  const keys = new Float64Array(size);
  let j = 0;
  for (let i = 0; i < probs.length; i++) if (exponent[i] >>> 23 >= lowest) keys[j++] = i - exponent[i] * ID_SPAN;
  keys.sort();
  const head = new Array<number>(size);
  for (let i = 0; i < size; i++) head[i] = ((keys[i] % ID_SPAN) + ID_SPAN) % ID_SPAN;
  return head;
}

const ID_SPAN = 2 ** 20;

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
