import { describe, expect, it } from 'vitest';
import { argmax, probabilities, sampleFrom, topLogprobs, logprobOf, GREEDY, type SamplingParams } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import { fullSortProbabilities } from '../../helpers/full-sort-sampling.ts';

const logits = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05)]);
const close = (a: Float32Array, b: number[]) => b.forEach((v, i) => expect(a[i]).toBeCloseTo(v, 5));

describe('probabilities', () => {
  it('greedy is a point mass on the first maximum', () => {
    expect(Array.from(probabilities(Float32Array.from([1, 3, 3, 0]), GREEDY))).toEqual([0, 1, 0, 0]);
    expect(argmax(Float32Array.from([1, 3, 3, 0]))).toBe(1);
  });
  it('temperature 1 is the softmax; temperature 0.5 squares and renormalises', () => {
    close(probabilities(logits, { temperature: 1, topK: 0, topP: 1, minP: 0 }), [0.5, 0.3, 0.15, 0.05]);
    const sq = [0.25, 0.09, 0.0225, 0.0025];
    const z = sq.reduce((a, b) => a + b);
    close(probabilities(logits, { temperature: 0.5, topK: 0, topP: 1, minP: 0 }), sq.map((v) => v / z));
  });
  it('top-k keeps the k most likely tokens', () => {
    close(probabilities(logits, { temperature: 1, topK: 2, topP: 1, minP: 0 }), [0.625, 0.375, 0, 0]);
  });
  it('top-p keeps the smallest nucleus reaching p', () => {
    close(probabilities(logits, { temperature: 1, topK: 0, topP: 0.75, minP: 0 }), [0.625, 0.375, 0, 0]);
    close(probabilities(logits, { temperature: 1, topK: 0, topP: 0.85, minP: 0 }), [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
    close(probabilities(logits, { temperature: 1, topK: 0, topP: 1e-9, minP: 0 }), [1, 0, 0, 0]);
  });
  it('min-p drops tokens below min_p * p_max', () => {
    close(probabilities(logits, { temperature: 1, topK: 0, topP: 1, minP: 0.5 }), [0.625, 0.375, 0, 0]);
  });
});

describe('probabilities: truncation without sorting the vocabulary', () => {
  it('gives exactly the full sort\'s result over random vocabularies, peaked and flat, with ties', () => {
    const rng = new Xoshiro128(5);
    let truncated = 0;
    for (let trial = 0; trial < 300; trial++) {
      const V = [2, 7, 64, 512, 5000][trial % 5];
      const spread = [0.5, 4, 20][trial % 3];
      // Rounded logits make ties common, within and across exponent buckets.
      const logits = Float32Array.from({ length: V }, () => Math.round((rng.next() * 2 - 1) * spread * 4) / 4);
      const p: SamplingParams = {
        temperature: [0.3, 0.8, 1, 2][trial % 4],
        topK: [0, 1, 2, 40, V - 1, V + 3][Math.floor(rng.next() * 6)],
        topP: [1, 0.5, 0.9, 0.999999, 1e-9][Math.floor(rng.next() * 5)],
        minP: [0, 0, 0.05, 0.5][Math.floor(rng.next() * 4)],
      };
      if (p.topK === 1) continue; // greedy: a point mass either way
      const fast = probabilities(logits, p);
      const slow = fullSortProbabilities(logits, p);
      expect(Array.from(fast)).toEqual(Array.from(slow));
      if (fast.some((x) => x === 0) && !slow.every((x) => x > 0)) truncated++;
    }
    expect(truncated).toBeGreaterThan(100); // the cases cut something
  });
});

describe('sampleFrom and the RNG', () => {
  it('draws each token with its probability (seeded, 20k draws)', () => {
    const rng = new Xoshiro128(42);
    const p = Float32Array.from([0.5, 0.3, 0.15, 0.05]);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[sampleFrom(p, rng)]++;
    counts.forEach((c, i) => expect(Math.abs(c / 20000 - p[i])).toBeLessThan(0.015));
  });
  it('is deterministic per seed', () => {
    const a = new Xoshiro128(7);
    const b = new Xoshiro128(7);
    const c = new Xoshiro128(8);
    const seqA = Array.from({ length: 5 }, () => a.next());
    expect(Array.from({ length: 5 }, () => b.next())).toEqual(seqA);
    expect(Array.from({ length: 5 }, () => c.next())).not.toEqual(seqA);
    expect(seqA.every((x) => x >= 0 && x < 1)).toBe(true);
  });
});

describe('logprobs', () => {
  it('top-N are the N largest log-softmax values, best first', () => {
    const top = topLogprobs(logits, 2);
    expect(top.map((t) => t.id)).toEqual([0, 1]);
    expect(top[0].logprob).toBeCloseTo(Math.log(0.5), 5);
    expect(logprobOf(logits, 3)).toBeCloseTo(Math.log(0.05), 5);
  });
});
