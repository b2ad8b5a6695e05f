import { describe, expect, it } from 'vitest';
import { acceptDraftToken, verify, verifyGreedy } from '../../../src/speculative/rejection-sampler.ts';
import { Xoshiro128, type Rng } from '../../../src/runtime/rng.ts';
import { chiSquareTest } from '../../helpers/chi-square.ts';

const f = (a: number[]) => Float32Array.from(a);
const onehot = (v: number, n = 5) => f(Array.from({ length: n }, (_, i) => (i === v ? 1 : 0)));
/** An RNG that must not be used (greedy and certain outcomes draw nothing). */
const noRng: Rng = { next: () => { throw new Error('RNG used'); } };

describe('verify, greedy (point-mass target), as token-list tables', () => {
  // draft, target argmax at each of the k+1 positions -> emitted tokens
  it.each([
    { draft: [1, 2, 3], target: [1, 2, 3, 4], out: [1, 2, 3, 4], accepted: 3 }, // all accepted + bonus
    { draft: [1, 2, 3], target: [1, 0, 3, 4], out: [1, 0], accepted: 1 }, // rejected at 2: the target's token recovers
    { draft: [1, 2, 3], target: [4, 2, 3, 4], out: [4], accepted: 0 },
    { draft: [], target: [2], out: [2], accepted: 0 }, // k = 0: plain decoding
  ])('draft $draft vs target $target -> $out', ({ draft, target, out, accepted }) => {
    const r = verify(draft, null, target.map((t) => onehot(t)), noRng);
    expect(r.tokens).toEqual(out);
    expect(r.numAccepted).toBe(accepted);
  });

  it('checks shapes at entry', () => {
    expect(() => verify([1, 2], null, [onehot(1)], noRng)).toThrow(/k \+ 1/);
    expect(() => verify([1], [], [onehot(1), onehot(1)], noRng)).toThrow(/draft distributions/);
  });
});

/** One speculative step as the engine runs it, then plain decoding for the positions the step did not emit: drafts
 * x_i ~ q_i (or a point mass), verify() decides, and the first `depth + 1` tokens are returned. In this toy the target's
 * distribution at each position does not depend on the tokens before it, so their joint is the product of the p's. */
function stepThenPlain(p: Float32Array[], q: (Float32Array | null)[], pointMass: number[], rng: Rng): number[] {
  const draft = q.map((qi, i) => (qi ? sample(qi, rng) : pointMass[i]));
  const probs = q.every((qi) => qi) ? (q as Float32Array[]) : null;
  const out = verify(draft, probs, p, rng).tokens;
  while (out.length < p.length) out.push(sample(p[out.length], rng));
  return out;
}

function sample(dist: Float32Array, rng: Rng): number {
  let u = rng.next();
  for (let i = 0; i < dist.length; i++) if ((u -= dist[i]) < 0) return i;
  return dist.length - 1;
}

/** Chi-square of `n` runs of `run` against the product distribution of `p` (cells of the joint). */
function jointTest(p: Float32Array[], n: number, run: () => number[]) {
  const V = p[0].length;
  const counts = new Array(V ** p.length).fill(0);
  for (let i = 0; i < n; i++) counts[run().reduce((cell, t) => cell * V + t, 0)]++;
  const expected = counts.map((_, cell) => {
    let prob = 1;
    for (let pos = p.length - 1; pos >= 0; pos--, cell = Math.floor(cell / V)) prob *= p[pos][cell % V];
    return prob;
  });
  const outside = counts.reduce((a, c, cell) => a + (expected[cell] === 0 ? c : 0), 0);
  return { ...chiSquareTest(counts, expected), outside };
}

describe('verify() measured, at depth 1 and 2 with the bonus token', () => {
  // Truncated rows (zeros: a top-p / min-p cut) and a draft that proposes outside the target's support.
  const p = [f([0.5, 0.3, 0.2, 0]), f([0, 0.6, 0.1, 0.3]), f([0.25, 0.25, 0, 0.5])];
  const q = [f([0.1, 0.2, 0.3, 0.4]), f([0.4, 0.4, 0.2, 0]), f([0.7, 0.1, 0.1, 0.1])];

  it.each([1, 2])('k = %i: the emitted tokens and the bonus follow the target jointly; always-accept does not', (k) => {
    const rng = new Xoshiro128(100 + k);
    const target = p.slice(0, k + 1);
    const fair = jointTest(target, 60000, () => stepThenPlain(target, q.slice(0, k), [], rng));
    expect(fair.outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(0.001);
    // The same harness with a rule that keeps every draft (q's tokens, then the bonus) fails it.
    const biased = jointTest(target, 60000, () => {
      const draft = q.slice(0, k).map((qi) => sample(qi, rng));
      return [...draft, sample(target[k], rng)];
    });
    expect(biased.pValue < 1e-6 || biased.outside > 0).toBe(true);
  });

  it.each([[[0, 1]], [[3, 3]], [[2, 0]]])('point-mass drafts %j (n-gram, prediction) keep the target\'s joint', (drafts) => {
    const rng = new Xoshiro128(7);
    const fair = jointTest(p, 60000, () => stepThenPlain(p, [null, null], drafts, rng));
    expect(fair.outside).toBe(0);
    expect(fair.pValue).toBeGreaterThan(0.001);
  });

  it('acceptDraftToken draws no random number when the outcome is certain', () => {
    expect(acceptDraftToken(0.5, 0.5, noRng)).toBe(true);
    expect(acceptDraftToken(0.6, 0.2, noRng)).toBe(true);
    expect(acceptDraftToken(0, 0.2, noRng)).toBe(false);
  });
});

describe('verify, sampled: seeded statistics', () => {
  const p1 = f([0.1, 0.4, 0.2, 0.3]);
  const q1 = f([0.4, 0.1, 0.4, 0.1]);
  const p2 = f([0.25, 0.25, 0.25, 0.25]);
  const p3 = f([0.7, 0.1, 0.1, 0.1]);

  function draw(rng: Rng, biased: boolean): number {
    const x = sampleQ(q1, rng);
    if (biased) return x; // a broken rule: always accept the draft, i.e. sample from q
    const r = verify([x], [q1], [p1, p2], rng);
    return r.tokens[0];
  }
  function sampleQ(q: Float32Array, rng: Rng): number {
    let u = rng.next();
    for (let i = 0; i < q.length; i++) if ((u -= q[i]) < 0) return i;
    return q.length - 1;
  }

  it('is deterministic for a seed', () => {
    const a = new Xoshiro128(5);
    const b = new Xoshiro128(5);
    const runA = Array.from({ length: 50 }, () => draw(a, false));
    expect(Array.from({ length: 50 }, () => draw(b, false))).toEqual(runA);
  });

  it('the first token follows p (chi-square p > 0.001), and a biased rule fails the same test', () => {
    const rng = new Xoshiro128(2024);
    const fair = [0, 0, 0, 0];
    const biased = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) {
      fair[draw(rng, false)]++;
      biased[draw(rng, true)]++;
    }
    expect(chiSquareTest(fair, Array.from(p1)).pValue).toBeGreaterThan(0.001);
    expect(chiSquareTest(biased, Array.from(p1)).pValue).toBeLessThan(1e-6);
  });

  it('the bonus token follows p_{k+1} when everything is accepted', () => {
    const rng = new Xoshiro128(9);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) counts[verify([0], [onehot(0, 4)], [onehot(0, 4), p3], rng).tokens[1]]++;
    expect(chiSquareTest(counts, Array.from(p3)).pValue).toBeGreaterThan(0.001);
  });
});

describe('verifyGreedy (the engine\'s fast path for greedy targets)', () => {
  const V = 6;
  const pointMass = (t: number) => Float32Array.from({ length: V }, (_, v) => (v === t ? 1 : 0));
  it('returns what verify returns for point-mass targets, with and without draft distributions', () => {
    const rng = new Xoshiro128(3);
    for (let trial = 0; trial < 500; trial++) {
      const k = trial % 6;
      const draft = Array.from({ length: k }, () => Math.floor(rng.next() * 3));
      const target = Array.from({ length: k + 1 }, () => Math.floor(rng.next() * 3));
      const q = draft.map(() => {
        const w = Float32Array.from({ length: V }, () => rng.next());
        const sum = w.reduce((a, b) => a + b, 0);
        return w.map((x) => x / sum);
      });
      const expected = verify(draft, trial % 2 ? q : null, target.map(pointMass), new Xoshiro128(trial));
      expect(verifyGreedy(draft, target)).toEqual(expected);
    }
  });
  it('refuses a target row count that is not k + 1', () => {
    expect(() => verifyGreedy([1, 2], [1, 2])).toThrow(/k \+ 1/);
  });
});
