import { describe, expect, it } from 'vitest';
import { CostMemory, expectedTokens } from '../../../src/speculative/cost-memory.ts';
import { draftLengthPolicy, type DraftLengthPolicy } from '../../../src/speculative/draft-length.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';

describe('expectedTokens', () => {
  it('is Leviathan et al.\'s (1 - a^(k+1)) / (1 - a)', () => {
    expect(expectedTokens(0, 4)).toBe(1);
    expect(expectedTokens(0.5, 1)).toBeCloseTo(1.5);
    expect(expectedTokens(0.7, 4)).toBeCloseTo((1 - 0.7 ** 5) / 0.3);
    expect(expectedTokens(1, 3)).toBeLessThan(4); // capped below 1: finite, and grows with k
    expect(expectedTokens(1, 3)).toBeGreaterThan(expectedTokens(1, 2));
  });
});

describe('the acceptance rule', () => {
  it('shrinks on rejection, pauses speculation when it does not pay, probes again, and grows back', () => {
    const a = draftLengthPolicy(4);
    expect(a.next()).toBe(4);
    const seen: number[] = [];
    let k = a.next();
    while (k > 0 && seen.length < 100) {
      seen.push(k);
      a.onVerified(k, 0);
      k = a.next();
    }
    expect(k).toBe(0); // paused: plain decoding
    expect(seen.slice(0, 3)).toEqual([4, 4, 4]);
    expect(seen).toContain(1);
    expect(Array.from({ length: 15 }, () => a.next()).every((x) => x === 0)).toBe(true);
    expect(a.next()).toBe(1); // probing again
    for (let i = 0; i < 40; i++) {
      const kk = a.next();
      a.onVerified(kk, kk);
    }
    expect(a.next()).toBe(4);
  });

  it('is fixed when not adaptive', () => {
    const a = draftLengthPolicy(3, { adaptive: false });
    a.onVerified(3, 0);
    expect(a.next()).toBe(3);
  });

  it('without cost reports (batched steps) behaves on acceptance alone', () => {
    const a = draftLengthPolicy(4);
    for (let i = 0; i < 100; i++) {
      const k = a.next();
      expect(k).toBeGreaterThan(0);
      a.onVerified(k, Math.ceil(k / 2));
    }
  });
});

describe('the cost-aware draft length', () => {
  // A simulated single stream, driven as the engine drives the controller: next(), then onVerified() and onStepTimed().
  // Each draft token is accepted with probability `acceptance` (given the ones before it were); a step with k drafts
  // costs cost(k) seconds.
  function drive(a: DraftLengthPolicy, steps: number, acceptance: number, cost: (k: number) => number, seed = 1): number[] {
    const rng = new Xoshiro128(seed);
    const ks: number[] = [];
    for (let i = 0; i < steps; i++) {
      const k = a.next();
      ks.push(k);
      let accepted = 0;
      while (accepted < k && rng.next() < acceptance) accepted++;
      a.onVerified(k, accepted);
      a.onStepTimed(k, cost(k));
    }
    return ks;
  }
  const optimum = (acceptance: number, maxK: number, cost: (k: number) => number) =>
    Array.from({ length: maxK + 1 }, (_, k) => k).reduce((best, k) =>
      (expectedTokens(acceptance, k) / cost(k) > expectedTokens(acceptance, best) / cost(best) ? k : best));
  const share = (ks: number[], k: number) => ks.filter((x) => x === k).length / ks.length;

  // Costs relative to a plain step of 1 ms: a draft chain (cheap extra draft tokens), drafting one pass per token,
  // and a memory-bound target whose verify pass is nearly free with a cheap draft.
  const cases = [
    { name: 'cheap chained drafts, acceptance 0.66 (stories260K at k=4)', acceptance: 0.66, maxK: 8, cost: (k: number) => (k === 0 ? 1e-3 : 1.4e-3 + 0.12e-3 * k) },
    { name: 'drafts costing a third of a step each, acceptance 0.6', acceptance: 0.6, maxK: 4, cost: (k: number) => (k === 0 ? 1e-3 : 1.1e-3 + 0.35e-3 * k) },
    { name: 'nearly free verification, acceptance 0.9', acceptance: 0.9, maxK: 6, cost: (k: number) => (k === 0 ? 1e-3 : 1.05e-3 + 0.05e-3 * k) },
  ];
  for (const c of cases) {
    it(`settles on the k with the most tokens per second: ${c.name}`, () => {
      const best = optimum(c.acceptance, c.maxK, c.cost);
      const rate = (k: number) => expectedTokens(c.acceptance, k) / c.cost(k);
      const ks = drive(draftLengthPolicy(c.maxK), 400, c.acceptance, c.cost).slice(100);
      // Mostly at the optimum or at a k within 3% of it (acceptance is estimated from random outcomes), and tokens
      // per second over the run within 8% of always choosing the best k, explorations included (over seeds: 0.93-0.99).
      expect(ks.filter((k) => rate(k) >= 0.97 * rate(best)).length / ks.length).toBeGreaterThan(0.6);
      expect(ks.reduce((s, k) => s + rate(k), 0) / ks.length / rate(best)).toBeGreaterThan(0.92);
    });
  }

  it('picks plain decoding where speculation costs more per token, and keeps trying speculation now and then', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.2e-3 + 0.5e-3 * k);
    expect(optimum(0.5, 4, cost)).toBe(0);
    const ks = drive(draftLengthPolicy(4), 1000, 0.5, cost).slice(50);
    expect(share(ks, 0)).toBeGreaterThan(0.9);
    expect(ks.some((k) => k > 0)).toBe(true);
  });

  it('spends little on exploring when speculation is far from paying (sampled drafts, one pass per draft token)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.1e-3 + 0.9e-3 * k);
    expect(optimum(0.5, 8, cost)).toBe(0);
    const ks = drive(draftLengthPolicy(8), 600, 0.5, cost).slice(100);
    // A step at k costs 1 + 0.9k plain steps: exploring k = 8 often would cost far more than the 3% allowed here.
    const seconds = ks.reduce((s, k) => s + cost(k), 0);
    expect((ks.length * cost(0)) / seconds).toBeGreaterThan(0.97);
  });

  it('is not misled by a cold start (the first speculative steps of a fresh process run several times slower)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.4e-3 + 0.12e-3 * k);
    let specSteps = 0;
    const cold = (k: number) => cost(k) * (k > 0 && specSteps++ < 8 ? 10 : 1);
    const ks = drive(draftLengthPolicy(4), 200, 0.66, cold).slice(60);
    const rate = (k: number) => expectedTokens(0.66, k) / cost(k);
    expect(ks.reduce((s, k) => s + rate(k), 0) / ks.length / rate(optimum(0.66, 4, cost))).toBeGreaterThan(0.92);
  });

  it('follows a change of costs', () => {
    const a = draftLengthPolicy(4);
    const slow = (k: number) => (k === 0 ? 1e-3 : 1.2e-3 + 0.8e-3 * k);
    const fast = (k: number) => (k === 0 ? 1e-3 : 1.05e-3 + 0.05e-3 * k);
    expect(optimum(0.8, 4, slow)).toBe(0);
    expect(share(drive(a, 200, 0.8, slow).slice(50), 0)).toBeGreaterThan(0.85);
    const after = drive(a, 1600, 0.8, fast, 2);
    expect(share(after.slice(1200), optimum(0.8, 4, fast))).toBeGreaterThan(0.75);
  });

  it.each([7, 8, 9])('is not misled by the machine speeding up and slowing down by a third while it explores (seed %i)', (seed) => {
    // stories260K-like costs at acceptance 0.72: k = 3 best, k = 4 within 2%, plain 20% behind. (Seed 9 once measured
    // k = 1 in a slow stretch, and a line through plain and k = 1 made every longer k look hopeless: 0.88.)
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.45e-3 + 0.2e-3 * k);
    const rate = (k: number) => expectedTokens(0.72, k) / cost(k);
    const best = optimum(0.72, 4, cost);
    const rng = new Xoshiro128(seed);
    const a = draftLengthPolicy(4);
    let sum = 0;
    const steps = 2000;
    for (let i = 0; i < steps; i++) {
      const k = a.next();
      let accepted = 0;
      while (accepted < k && rng.next() < 0.72) accepted++;
      a.onVerified(k, accepted);
      // The speed drifts over tens of steps, as this machine's does.
      a.onStepTimed(k, cost(k) * (1 + 0.35 * Math.sin(i / 9)));
      if (i >= 200) sum += rate(k);
    }
    expect(sum / (steps - 200) / rate(best)).toBeGreaterThan(0.95);
  });

  it('shares what it measured: a later sequence of the same kind starts at the best k', () => {
    const costs = new CostMemory();
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.4e-3 + 0.12e-3 * k);
    drive(draftLengthPolicy(8, { costs }), 300, 0.66, cost);
    const best = optimum(0.66, 8, cost);
    expect(costs.tokenAcceptance).toBeGreaterThan(0.55);
    expect(costs.tokenAcceptance).toBeLessThan(0.77);
    expect(draftLengthPolicy(8, { costs }).next()).toBe(best);
    expect(draftLengthPolicy(8, { costs: new CostMemory() }).next()).toBe(8); // nothing measured: maxK
  });

  it('ignores costs where it must not depend on timing (seeded sampling)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.2e-3 + 0.5e-3 * k);
    const ks = drive(draftLengthPolicy(4, { costAware: false }), 100, 0.8, cost);
    expect(ks.every((k) => k > 0)).toBe(true);
    expect(ks.slice(50).filter((k) => k === 4).length).toBeGreaterThan(25);
  });
});
