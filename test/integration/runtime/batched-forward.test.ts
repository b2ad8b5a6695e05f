// The batched forward pass against single-sequence passes, and KV rollback against never having appended, for both
// kinds of cache: the runtime's own buffers with appended KV outputs (append-kv-cache.ts) and Optimum's presents.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import type { PresentKvCache } from '../../../src/runtime/present-kv-cache.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

// float16 variants return float16 logits: a different summation order (batched vs alone) can flip their last bit,
// 1/64 at magnitudes 8-16.
const tolerances = { fp32: 1e-4, int8: 1e-4, fp16: 2 ** -5 };

// (Appended KV with packedPast false: single sequences feed a past per layer, as models over 16 MB do.)
describe.each([['fp32', true, true], ['int8', true, true], ['fp16', true, true], ['fp32', true, false], ['fp16', true, false],
  ['fp32', false, false], ['int8', false, false], ['fp16', false, false]] as const)(
  'batched forward (%s, appended KV: %s, packed past: %s)', (dtype, appendKv, packedPast) => {
  let decoder: Decoder;
  const TOLERANCE = tolerances[dtype];
  beforeAll(async () => {
    decoder = await Decoder.open(tinyModel({ seed: 5 }, ['int8', 'fp16']), { dtype, appendKv, packedPast });
    expect(decoder.appendsKv).toBe(appendKv);
  });
  afterAll(() => decoder.close());

  const prompts = [[1, 10, 20, 30, 40, 50, 60], [1, 300], [1, 7, 8, 9, 10], [1, 100, 200, 300, 400, 500, 11, 12, 13, 14]];
  const next = [[5, 6], [7], [8, 9, 10, 11], [12, 13, 14]]; // different numbers of new tokens per sequence

  it('4 sequences of different lengths in one pass equal each sequence alone (prefill and a multi-token step)', async () => {
    const alone: Float32Array[][][] = [];
    for (let b = 0; b < prompts.length; b++) {
      const cache = decoder.newCache();
      const first = (await decoder.forward([{ cache, tokens: prompts[b] }]))[0].map((l) => l.slice());
      const second = (await decoder.forward([{ cache, tokens: next[b] }]))[0].map((l) => l.slice());
      alone.push([first, second]);
    }
    const caches = prompts.map(() => decoder.newCache());
    const forwardsBefore = decoder.numForwards;
    const prefill = await decoder.forward(prompts.map((tokens, b) => ({ cache: caches[b], tokens })));
    let worst = 0;
    prefill.forEach((rows, b) => rows.forEach((l, i) => (worst = Math.max(worst, maxDiff(l, alone[b][0][i])))));
    const step = await decoder.forward(next.map((tokens, b) => ({ cache: caches[b], tokens })));
    step.forEach((rows, b) => rows.forEach((l, i) => (worst = Math.max(worst, maxDiff(l, alone[b][1][i])))));
    expect(decoder.numForwards - forwardsBefore).toBe(2); // one session.run per batched step
    expect(step.map((r) => r.length)).toEqual(next.map((n) => n.length));
    expect(caches.map((c) => c.length)).toEqual(prompts.map((p, b) => p.length + next[b].length));
    expect(worst).toBeLessThan(TOLERANCE);
  });

  it('a lastOnly row gets its last position\'s logits alone, the same as the full pass\'s last row', async () => {
    const full = prompts.map(() => decoder.newCache());
    const last = prompts.map(() => decoder.newCache());
    const all = (await decoder.forward(prompts.map((tokens, b) => ({ cache: full[b], tokens })))).map((rows) => rows.map((l) => l.slice()));
    const mixed = await decoder.forward(prompts.map((tokens, b) => ({ cache: last[b], tokens, lastOnly: b % 2 === 0 })));
    expect(mixed.map((rows) => rows.length)).toEqual(prompts.map((p, b) => (b % 2 === 0 ? 1 : p.length)));
    mixed.forEach((rows, b) => expect(maxDiff(rows[rows.length - 1], all[b][all[b].length - 1])).toBe(0));
    expect(last.map((c) => c.length)).toEqual(prompts.map((p) => p.length)); // every position still in the cache
  });

  it('appending k tokens, rolling back j and decoding again equals never having appended them', async () => {
    const prompt = [1, 42, 43, 44];
    const clean = decoder.newCache();
    await decoder.forward([{ cache: clean, tokens: prompt }]);
    const expected = (await decoder.forward([{ cache: clean, tokens: [99, 98] }]))[0].map((l) => l.slice());

    const rolled = decoder.newCache();
    await decoder.forward([{ cache: rolled, tokens: prompt }]);
    await decoder.forward([{ cache: rolled, tokens: [7, 7, 7, 7, 7] }]); // k = 5 speculative tokens
    rolled.rollback(prompt.length); // j = 5: reject them all
    const got = (await decoder.forward([{ cache: rolled, tokens: [99, 98] }]))[0];
    expect(maxDiff(got[0], expected[0])).toBeLessThan(TOLERANCE);
    expect(maxDiff(got[1], expected[1])).toBeLessThan(TOLERANCE);

    // Partial rollback inside a batch: keep 2 of 5 appended tokens in one row while another row is untouched.
    const a = decoder.newCache();
    const b = decoder.newCache();
    await decoder.forward([{ cache: a, tokens: prompt }, { cache: b, tokens: [1, 2, 3] }]);
    await decoder.forward([{ cache: a, tokens: [99, 98, 5, 5, 5] }, { cache: b, tokens: [4] }]);
    a.rollback(prompt.length + 2);
    const after = await decoder.forward([{ cache: a, tokens: [11] }, { cache: b, tokens: [5] }]);
    const reference = decoder.newCache();
    await decoder.forward([{ cache: reference, tokens: [...prompt, 99, 98] }]);
    const ref = (await decoder.forward([{ cache: reference, tokens: [11] }]))[0][0];
    expect(maxDiff(after[0][0], ref)).toBeLessThan(TOLERANCE);
  });

  it('a rollback is O(1): rolled-back positions are dropped or become holes that later passes mask out', async () => {
    const cache = decoder.newCache() as PresentKvCache; // (slots: PresentKvCache only)
    const holes = !appendKv;
    await decoder.forward([{ cache, tokens: [1, 2, 3, 4, 5, 6] }]);
    const bytes = cache.bytes;
    cache.rollback(2);
    expect(cache.length).toBe(2);
    if (holes) expect(cache.slots).toBe(6); // nothing copied
    expect(cache.bytes).toBe(holes ? bytes : bytes / 3);
    const withHoles = (await decoder.forward([{ cache, tokens: [3] }]))[0][0];
    if (holes) expect([cache.length, cache.slots]).toEqual([3, 7]); // the 4 holes were fed with attention_mask 0
    const clean = decoder.newCache();
    const reference = (await decoder.forward([{ cache: clean, tokens: [1, 2, 3] }]))[0][2];
    expect(maxDiff(withHoles, reference)).toBeLessThan(TOLERANCE);
    expect(() => cache.rollback(4)).toThrow(/outside/);

    // Speculation-like cycles (append 5, keep 1): holes stay bounded, and the result equals a clean cache.
    const kept = [1, 2, 3];
    for (let i = 0; i < 40; i++) {
      const next = 10 + (i % 50);
      await decoder.forward([{ cache, tokens: [next, 7, 7, 7, 7] }]);
      cache.rollback(cache.length - 4);
      kept.push(next);
      if (holes) expect(cache.slots - cache.length).toBeLessThanOrEqual(Math.max(8, cache.length >> 2) + 5);
    }
    const last = (await decoder.forward([{ cache, tokens: [5] }]))[0][0];
    const fresh = decoder.newCache();
    const expected = (await decoder.forward([{ cache: fresh, tokens: [...kept, 5] }]))[0][kept.length];
    expect(maxDiff(last, expected)).toBeLessThan(TOLERANCE);
  });

  it('random batch schedules (same rows again, other rows, single rows, rollbacks) equal each sequence alone', async () => {
    // Exercises the cache residing in a batch's present between passes, its copy-out and its holes.
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const seqs = Array.from({ length: 4 }, (_, i) => ({ cache: decoder.newCache(), kept: [1, 50 + i] }));
    for (const s of seqs) await decoder.forward([{ cache: s.cache, tokens: s.kept }]);
    let order = [0, 1, 2, 3];
    let worst = 0;
    for (let step = 0; step < 24; step++) {
      if (rand(3) === 0) order = [0, 1, 2, 3].filter(() => rand(4) !== 0).sort(() => rand(3) - 1);
      if (order.length === 0) order = [rand(4)];
      const rows = order.map((i) => ({ i, tokens: Array.from({ length: 1 + rand(3) }, () => 3 + rand(400)) }));
      const logits = await decoder.forward(rows.map((r) => ({ cache: seqs[r.i].cache, tokens: r.tokens })));
      for (const [j, r] of rows.entries()) {
        const s = seqs[r.i];
        const reference = (await decoder.forward([{ cache: decoder.newCache(), tokens: [...s.kept, ...r.tokens] }]))[0].slice(s.kept.length);
        r.tokens.forEach((_, k) => (worst = Math.max(worst, maxDiff(logits[j][k], reference[k]))));
        // Keep a random prefix of the new tokens (speculative rejection), roll the rest back.
        const keep = 1 + rand(r.tokens.length);
        s.kept.push(...r.tokens.slice(0, keep));
        s.cache.rollback(s.kept.length);
        expect(s.cache.length).toBe(s.kept.length);
      }
    }
    expect(worst).toBeLessThan(TOLERANCE);
  });
});
