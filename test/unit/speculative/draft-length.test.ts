import { describe, expect, it } from 'vitest';
import { AcceptanceMemory, expectedTokens } from '../../../src/speculative/cost-memory.ts';
import { draftLengthPolicy } from '../../../src/speculative/draft-length.ts';
import { batchKind, GoodputPolicy } from '../../../src/speculative/goodput.ts';
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

/** A lone stream as the engine drives it (step-draft-lengths.ts): the goodput policy chooses k for a batch of one from
 * the sequence's acceptance, the sequence's acceptance rule standing in until costs are known. */
function loneStream(maxK: number, o: { prior?: AcceptanceMemory; policy?: GoodputPolicy } = {}) {
  const seq = draftLengthPolicy(maxK, { prior: o.prior });
  const policy = o.policy ?? new GoodputPolicy(maxK);
  const kind = batchKind(1, ['draft'], false);
  return {
    next: () => policy.choose(kind, [{ acceptance: seq.tokenAcceptance, cap: maxK }], () => seq.next()),
    onVerified: (drafted: number, accepted: number) => seq.onVerified(drafted, accepted),
    onStepTimed: (k: number, seconds: number) => policy.onStepTimed(kind, k, seconds),
  };
}
type Stream = ReturnType<typeof loneStream>;

describe('the goodput policy for a lone stream', () => {
  // A simulated single stream, driven as the engine drives it: next(), then onVerified() and onStepTimed(). Each draft
  // token is accepted with probability `acceptance` (given the ones before it were); a step with k drafts costs
  // cost(k) seconds.
  function drive(a: Stream, steps: number, acceptance: number, cost: (k: number) => number, seed = 1): number[] {
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
      const ks = drive(loneStream(c.maxK), 400, c.acceptance, c.cost).slice(100);
      // Mostly at the optimum or at a k within 3% of it (acceptance is estimated from random outcomes), and tokens
      // per second over the run within 8% of always choosing the best k, explorations included (over seeds: 0.93-0.99).
      expect(ks.filter((k) => rate(k) >= 0.97 * rate(best)).length / ks.length).toBeGreaterThan(0.6);
      expect(ks.reduce((s, k) => s + rate(k), 0) / ks.length / rate(best)).toBeGreaterThan(0.92);
    });
  }

  it('picks plain decoding where speculation costs more per token, and keeps trying speculation now and then', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.2e-3 + 0.5e-3 * k);
    expect(optimum(0.5, 4, cost)).toBe(0);
    const ks = drive(loneStream(4), 1000, 0.5, cost).slice(50);
    expect(share(ks, 0)).toBeGreaterThan(0.9);
    expect(ks.some((k) => k > 0)).toBe(true);
  });

  it('spends little on exploring when speculation is far from paying (sampled drafts, one pass per draft token)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.1e-3 + 0.9e-3 * k);
    expect(optimum(0.5, 8, cost)).toBe(0);
    const ks = drive(loneStream(8), 600, 0.5, cost).slice(100);
    // A step at k costs 1 + 0.9k plain steps: exploring k = 8 often would cost far more than the 3% allowed here.
    const seconds = ks.reduce((s, k) => s + cost(k), 0);
    expect((ks.length * cost(0)) / seconds).toBeGreaterThan(0.97);
  });

  it('is not misled by a cold start (the first speculative steps of a fresh process run several times slower)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.4e-3 + 0.12e-3 * k);
    let specSteps = 0;
    const cold = (k: number) => cost(k) * (k > 0 && specSteps++ < 8 ? 10 : 1);
    const ks = drive(loneStream(4), 200, 0.66, cold).slice(60);
    const rate = (k: number) => expectedTokens(0.66, k) / cost(k);
    expect(ks.reduce((s, k) => s + rate(k), 0) / ks.length / rate(optimum(0.66, 4, cost))).toBeGreaterThan(0.92);
  });

  it.each([1, 2, 3])('comes back to plain decoding when a cold start made plain steps look slow (seed %i)', (seed) => {
    // stories260K at batch 2 (measured per step): plain best by ~8%. The first plain steps of the process run 3x slow
    // (cold code); the speculative lengths are then compared among themselves, so only a later plain measurement
    // can correct their level.
    const cost = (k: number) => [1, 1.9, 2.45, 2.85, 3.4][k] * 1e-3;
    let steps = 0;
    const cold = (k: number) => cost(k) * (k === 0 && steps++ < 300 ? 3 : 1);
    const rate = (k: number) => expectedTokens(0.72, k) / cost(k);
    expect(optimum(0.72, 4, cost)).toBe(0);
    const ks = drive(loneStream(4), 3000, 0.72, (k) => (k === 0 ? cold(0) : (steps++, cost(k))), seed).slice(1000);
    expect(ks.reduce((s, k) => s + rate(k), 0) / ks.length / rate(0)).toBeGreaterThan(0.97);
  });

  it('explores plain decoding every few hundred steps, not at every chance, where the batch keeps cutting it short', () => {
    // Speculation clearly pays (wide-100m-like costs); every run of plain steps is cut by a change of the batch (an
    // interrupt, as the engine reports one), so no plain comparison completes.
    const policy = new GoodputPolicy(4);
    const kind = batchKind(1, ['draft'], false);
    const seq = draftLengthPolicy(4);
    const cost = (k: number) => (1 + 0.1 * k) * 1e-3;
    const rng = new Xoshiro128(3);
    let plain = 0;
    for (let i = 0; i < 3200; i++) {
      const k = policy.choose(kind, [{ acceptance: seq.tokenAcceptance, cap: 4 }], () => seq.next());
      let accepted = 0;
      while (accepted < k && rng.next() < 0.75) accepted++;
      seq.onVerified(k, accepted);
      policy.onStepTimed(kind, k, cost(k));
      if (k === 0 && i >= 200) {
        plain++;
        policy.interrupt(kind);
      }
    }
    // One try every STALE_AFTER (320) steps at most: 4 steps each, 3000 steps.
    expect(plain).toBeLessThanOrEqual(4 * Math.ceil(3000 / 320));
  });

  it('follows a change of costs', () => {
    const a = loneStream(4);
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
    const a = loneStream(4);
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

  it.each([1, 2, 3])('is not misled by the machine running at half speed for long stretches (seed %i)', (seed) => {
    // A shared host: speed halves or doubles for hundreds of steps at a time. Costs measured in different stretches do
    // not compare; runs that follow each other do.
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.1e-3 + 0.15e-3 * k);
    const rate = (k: number) => expectedTokens(0.75, k) / cost(k);
    const best = optimum(0.75, 4, cost);
    const rng = new Xoshiro128(seed);
    const a = loneStream(4);
    let sum = 0;
    let slow = 1;
    const steps = 3000;
    for (let i = 0; i < steps; i++) {
      if (i % 250 === 0) slow = rng.next() < 0.5 ? 1 : 2.2;
      const k = a.next();
      let accepted = 0;
      while (accepted < k && rng.next() < 0.75) accepted++;
      a.onVerified(k, accepted);
      a.onStepTimed(k, cost(k) * slow);
      if (i >= 200) sum += rate(k);
    }
    expect(sum / (steps - 200) / rate(best)).toBeGreaterThan(0.95);
  });

  it('shares what it measured: a later sequence of the same kind starts at the best k', () => {
    const prior = new AcceptanceMemory();
    const policy = new GoodputPolicy(8);
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.4e-3 + 0.12e-3 * k);
    drive(loneStream(8, { prior, policy }), 300, 0.66, cost);
    const best = optimum(0.66, 8, cost);
    expect(prior.tokenAcceptance).toBeGreaterThan(0.55);
    expect(prior.tokenAcceptance).toBeLessThan(0.77);
    expect(loneStream(8, { prior, policy }).next()).toBe(best);
    expect(loneStream(8).next()).toBe(8); // nothing measured: maxK
  });

  it('ignores costs where it must not depend on timing (seeded sampling)', () => {
    const cost = (k: number) => (k === 0 ? 1e-3 : 1.2e-3 + 0.5e-3 * k);
    const seeded = draftLengthPolicy(4, { reproducible: true });
    expect(seeded.batched).toBe(false);
    const ks = drive({ next: () => seeded.next(), onVerified: (d, a) => seeded.onVerified(d, a), onStepTimed: () => {} }, 100, 0.8, cost);
    expect(ks.every((k) => k > 0)).toBe(true);
    expect(ks.slice(50).filter((k) => k === 4).length).toBeGreaterThan(25);
  });
});

describe('the goodput policy for a batch', () => {
  // A batch of `size` sequences at acceptance `acceptance`, driven as the engine drives it; a step with k drafts per
  // sequence costs cost(k) seconds for the whole batch. Returns the k of every step.
  function driveBatch(policy: GoodputPolicy, size: number, steps: number, acceptance: number, cost: (k: number) => number, maxK = 4) {
    const seqs = Array.from({ length: size }, () => draftLengthPolicy(maxK));
    const kind = batchKind(size, ['draft'], false);
    const rng = new Xoshiro128(3);
    const ks: number[] = [];
    for (let i = 0; i < steps; i++) {
      const k = policy.choose(kind, seqs.map((s) => ({ acceptance: s.tokenAcceptance, cap: maxK })), () => Math.max(...seqs.map((s) => s.next())));
      ks.push(k);
      for (const s of seqs) {
        let accepted = 0;
        while (accepted < k && rng.next() < acceptance) accepted++;
        s.onVerified(k, accepted);
      }
      policy.onStepTimed(kind, k, cost(k));
    }
    return ks;
  }
  const share = (ks: number[], k: number) => ks.filter((x) => x === k).length / ks.length;

  it('speculates in a small batch where the verify pass is nearly free per position (memory-bound target)', () => {
    // Cost per step of a batch of 4: each verified position adds 4% of a plain step.
    const cost = (k: number) => 10e-3 * (1 + 0.04 * k) + (k > 0 ? 0.5e-3 : 0);
    const ks = driveBatch(new GoodputPolicy(4), 4, 400, 0.7, cost).slice(100);
    expect(share(ks, 0)).toBeLessThan(0.1);
    expect(ks.filter((k) => k >= 2).length / ks.length).toBeGreaterThan(0.8);
    expect(goodput(ks, 0.7, cost)).toBeGreaterThan(2);
  });

  // Tokens per second of the steps at `ks`, against plain decoding throughout.
  const goodput = (ks: number[], acceptance: number, cost: (k: number) => number) =>
    ks.reduce((sum, k) => sum + expectedTokens(acceptance, k), 0) / ks.reduce((sum, k) => sum + cost(k), 0) / (1 / cost(0));

  it('decodes plainly in a full batch where each position costs nearly a plain step (compute-bound), trying k now and then', () => {
    const cost = (k: number) => 20e-3 * (1 + 0.9 * k);
    const ks = driveBatch(new GoodputPolicy(4), 16, 600, 0.7, cost).slice(100);
    expect(share(ks, 0)).toBeGreaterThan(0.8);
    expect(ks.some((k) => k > 0)).toBe(true);
    // Exploring costs little: within 3% of plain decoding's tokens per second.
    expect(goodput(ks, 0.7, cost)).toBeGreaterThan(0.97);
  });

  it('keeps the costs of each kind of batch apart: what a lone stream measured does not decide for 16', () => {
    const policy = new GoodputPolicy(4);
    driveBatch(policy, 1, 300, 0.7, (k) => 1e-3 * (1 + 0.05 * k));
    expect(policy.cost(batchKind(1, ['draft'], false), 4)).toBeDefined();
    expect(policy.cost(batchKind(16, ['draft'], false), 4)).toBeUndefined();
    const cost = (k: number) => 20e-3 * (1 + 0.9 * k);
    const ks = driveBatch(policy, 16, 300, 0.7, cost).slice(100);
    expect(share(ks, 0)).toBeGreaterThan(0.8);
    expect(goodput(ks, 0.7, cost)).toBeGreaterThan(0.97);
  });

  it('lets the nearest smaller batch that knows its costs stand in for a new size, not the acceptance rule', () => {
    const policy = new GoodputPolicy(4);
    const cost = (k: number) => 20e-3 * (1 + 0.9 * k);
    driveBatch(policy, 8, 300, 0.7, cost);
    const seqs = Array.from({ length: 16 }, () => ({ acceptance: 0.7, cap: 4 }));
    // The acceptance rule would say 4; batches of 8 found that plain decoding pays.
    expect(policy.choose(batchKind(16, ['draft'], false), seqs, () => 4)).toBe(0);
    expect(policy.choose(batchKind(16, ['ngram'], false), seqs, () => 4)).toBe(4); // other proposers: nothing known
  });

  it('spaces explorations away from plain decoding by what they lost, the draft\'s catching up included', () => {
    // A compute-bound batch where plain decoding wins, and whose draft, idle while plain steps run, must first be fed
    // every token since it last ran: an exploration's first step costs 20% of a plain step per step skipped, up to
    // the sequences' length (100 tokens: after that they are new ones, whose prompts the draft has not seen either).
    const policy = new GoodputPolicy(4);
    const kind = batchKind(16, ['draft'], false);
    const seqs = Array.from({ length: 16 }, () => ({ acceptance: 0.7, cap: 4 }));
    const rng = new Xoshiro128(5);
    const plain = 20e-3;
    let idle = 0;
    let [seconds, tokens] = [0, 0];
    for (let i = 0; i < 3000; i++) {
      const k = policy.choose(kind, seqs, () => 4);
      let step = plain * (1 + 0.9 * k);
      if (k > 0) {
        step += 0.2 * plain * Math.min(idle, 100);
        idle = 0;
      } else idle++;
      let accepted = 0;
      while (accepted < k && rng.next() < 0.7) accepted++;
      policy.onStepTimed(kind, k, step, { actual: accepted + 1, expected: expectedTokens(0.7, k) });
      if (i >= 500) [seconds, tokens] = [seconds + step, tokens + accepted + 1];
    }
    // Tokens per second against plain decoding's: explorations cost at most a few percent.
    expect(tokens / seconds / (1 / plain)).toBeGreaterThan(0.97);
  });

  it('trusts the tokens each k delivered over what the acceptance promised: plain decoding where drafts deliver less', () => {
    // Acceptance 0.8 promises E(0.8, 2) = 2.44 tokens for 2.0x a plain step's cost: speculation looks 22% better. The
    // drafts deliver 60% of that (rejections come together, as after a hard token), which makes it 27% worse.
    const cost = (k: number) => 1e-3 * (1 + 0.5 * k);
    const seqs = Array.from({ length: 4 }, () => ({ acceptance: 0.8, cap: 4 }));
    const run = (delivered: number | null) => {
      const policy = new GoodputPolicy(4);
      const kind = batchKind(4, ['draft'], false);
      const ks: number[] = [];
      for (let i = 0; i < 600; i++) {
        const k = policy.choose(kind, seqs, () => 4);
        ks.push(k);
        const expected = expectedTokens(0.8, k);
        policy.onStepTimed(kind, k, cost(k), delivered === null ? undefined : { actual: k === 0 ? 1 : delivered * expected, expected });
      }
      return ks.slice(200);
    };
    expect(share(run(null), 0)).toBeLessThan(0.2);
    expect(share(run(0.6), 0)).toBeGreaterThan(0.8);
    expect(share(run(1), 0)).toBeLessThan(0.2); // delivering what was promised changes nothing
  });

  it('counts a sequence with no room for drafts as one token whatever k (cap 0)', () => {
    const policy = new GoodputPolicy(4);
    const kind = batchKind(2, ['draft'], false);
    for (let i = 0; i < 40; i++) {
      const k = policy.choose(kind, [{ acceptance: 0.9, cap: 0 }, { acceptance: 0.9, cap: 0 }], () => 4);
      // Every k yields one token per sequence, so any k > 0 only costs: plain decoding must win once measured.
      policy.onStepTimed(kind, k, 1e-3 * (1 + 0.1 * k));
    }
    expect(policy.choose(kind, [{ acceptance: 0.9, cap: 0 }, { acceptance: 0.9, cap: 0 }], () => 4)).toBe(0);
  });

  it('buckets batch sizes: 1, 2, 3-4, 5-8, 9-16, ...; proposers and sampling apart', () => {
    expect([1, 2, 3, 4, 5, 8, 9, 16, 17].map((n) => batchKind(n, ['draft'], false).split('/')[0])).toEqual(['1', '2', '4', '4', '8', '8', '16', '16', '32']);
    expect(batchKind(4, ['ngram', 'draft', 'draft'], true)).toBe('4/draft+ngram/sampled');
  });
});
