import { describe, expect, it } from 'vitest';
import { ngramLookup, NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { PredictionProposer } from '../../../src/speculative/prediction-proposer.ts';
import { AdaptiveDraftLength, CostMemory } from '../../../src/speculative/adaptive-draft-length.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';
import type { ProposalContext } from '../../../src/speculative/proposer.ts';

const ctx = (tokens: number[], prediction?: number[], numPromptTokens = 0): ProposalContext =>
  ({ id: 'x', tokens, numPromptTokens, sampling: GREEDY, rng: new Xoshiro128(1), prediction });

describe('ngramLookup', () => {
  it('proposes what followed the latest earlier match of the longest suffix', () => {
    expect(ngramLookup([1, 2, 3, 4, 5, 9, 1, 2, 3], [1, 2, 3, 4, 5, 9, 1, 2, 3], 2)).toEqual([4, 5]);
    expect(ngramLookup([7, 1, 8, 2, 1, 9, 2, 1], [7, 1, 8, 2, 1, 9, 2, 1], 3)).toEqual([9, 2, 1]); // "2 1" matched at 3
  });
  it('falls back to shorter n-grams and returns nothing without a match', () => {
    expect(ngramLookup([5, 6, 7, 6], [5, 6, 7, 6], 1)).toEqual([7]);
    expect(ngramLookup([1, 2, 3], [1, 2, 3], 4)).toEqual([]);
  });
  it('the n-gram proposer respects k', async () => {
    const [p] = await new NgramProposer().propose([{ seq: ctx([1, 2, 3, 4, 1, 2]), k: 1 }]);
    expect(p.tokens).toEqual([3]);
    expect(p.probs).toBeUndefined();
  });
});

describe('PredictionProposer', () => {
  const proposer = new PredictionProposer();
  it('proposes the head of the prediction first, then re-synchronises on the output', async () => {
    const [first] = await proposer.propose([{ seq: ctx([1, 50], [10, 11, 12, 13], 2), k: 3 }]);
    expect(first.tokens).toEqual([10, 11, 12]);
    const [later] = await proposer.propose([{ seq: ctx([1, 50, 10, 11], [10, 11, 12, 13], 2), k: 3 }]);
    expect(later.tokens).toEqual([12, 13]);
    const [none] = await proposer.propose([{ seq: ctx([1, 50, 99], [10, 11], 2), k: 3 }]);
    expect(none.tokens).toEqual([]);
  });
});

describe('AdaptiveDraftLength', () => {
  it('shrinks on rejection, pauses speculation when it does not pay, probes again, and grows back', () => {
    const a = new AdaptiveDraftLength(4);
    expect(a.next()).toBe(4);
    const seen: number[] = [];
    let k = a.next();
    while (k > 0 && seen.length < 100) {
      seen.push(k);
      a.record(k, 0);
      k = a.next();
    }
    expect(k).toBe(0); // paused: plain decoding
    expect(seen.slice(0, 3)).toEqual([4, 4, 4]);
    expect(seen).toContain(1);
    expect(Array.from({ length: 15 }, () => a.next()).every((x) => x === 0)).toBe(true);
    expect(a.next()).toBe(1); // probing again
    for (let i = 0; i < 40; i++) {
      const kk = a.next();
      a.record(kk, kk);
    }
    expect(a.next()).toBe(4);
  });
  it('is fixed when not adaptive', () => {
    const a = new AdaptiveDraftLength(3, false);
    a.record(3, 0);
    expect(a.next()).toBe(3);
  });

  // Drives the controller as the engine does for a sequence decoding alone: next(), then record() and recordCost().
  function drive(a: AdaptiveDraftLength, steps: number, specSeconds: number, plainSeconds: number): number[] {
    const ks: number[] = [];
    for (let i = 0; i < steps; i++) {
      const k = a.next();
      ks.push(k);
      if (k > 0) {
        const accepted = Math.ceil(k / 2); // about half accepted: acceptance alone would keep speculating
        a.record(k, accepted);
        a.recordCost(true, specSeconds * (accepted + 1), accepted + 1);
      } else {
        a.recordCost(false, plainSeconds, 1);
      }
    }
    return ks;
  }

  it('pauses speculation that accepts well but costs more time per token than plain decoding, then tries again', () => {
    const a = new AdaptiveDraftLength(4);
    const ks = drive(a, 60, 0.0012, 0.001);
    expect(ks.slice(0, 8).every((k) => k > 0)).toBe(true); // warm-up: speculating, measuring
    expect(ks.slice(8, 12)).toEqual([0, 0, 0, 0]); // a plain probe
    expect(ks.slice(12, 28).every((k) => k === 0)).toBe(true); // slower per token: paused
    expect(ks.slice(28).some((k) => k > 0)).toBe(true); // and tried again
  });

  it('keeps speculating, with short plain probes, when it is faster per token', () => {
    const a = new AdaptiveDraftLength(4);
    const ks = drive(a, 120, 0.0006, 0.001);
    expect(ks.filter((k) => k === 0).length).toBeLessThanOrEqual(3 * 4); // the probes only
    expect(ks.slice(12, 40).every((k) => k > 0)).toBe(true);
  });

  it('shares what it learned: a sequence started after speculation was found slower begins paused', () => {
    const costs = new CostMemory();
    drive(new AdaptiveDraftLength(4, true, { costs }), 12, 0.0012, 0.001);
    expect(costs.losing).toBe(true);
    const later = drive(new AdaptiveDraftLength(4, true, { costs }), 40, 0.0012, 0.001);
    expect(later.slice(0, 16).every((k) => k === 0)).toBe(true);
    expect(later.some((k) => k > 0)).toBe(true); // and still probes again
    const fresh = drive(new AdaptiveDraftLength(4, true, { costs: new CostMemory() }), 4, 0.0012, 0.001);
    expect(fresh.every((k) => k > 0)).toBe(true);
  });

  it('ignores costs where it must not depend on timing (seeded sampling)', () => {
    const ks = drive(new AdaptiveDraftLength(4, true, { costAware: false }), 60, 0.0012, 0.001);
    expect(ks.every((k) => k > 0)).toBe(true);
  });

  it('without cost reports (batched steps) behaves on acceptance alone', () => {
    const a = new AdaptiveDraftLength(4);
    for (let i = 0; i < 100; i++) {
      const k = a.next();
      expect(k).toBeGreaterThan(0);
      a.record(k, Math.ceil(k / 2));
    }
  });
});
