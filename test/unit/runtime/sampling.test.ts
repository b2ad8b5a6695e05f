import { describe, expect, it } from 'vitest';
import { argmax, probabilities, sampleFrom, topLogprobs, logprobOf, GREEDY } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';

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
