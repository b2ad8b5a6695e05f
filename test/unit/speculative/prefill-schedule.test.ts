// Chunked prefill's schedule: prompts part-way in first, newcomers while the batch has room; with streams decoding a
// token budget in all, split across steps; with none, the first prompt whole.
import { describe, expect, it } from 'vitest';
import { schedulePrefill } from '../../../src/speculative/prefill-schedule.ts';
import type { Sequence } from '../../../src/speculative/sequence.ts';

const seq = (prompt: number, cached = 0) => ({ tokens: Array(prompt).fill(5), cache: { length: cached }, cancelled: false }) as unknown as Sequence;

describe('prefill schedule', () => {
  it('with nothing decoding: the first prompt whole, more while they fit the budget', () => {
    const waiting = [seq(3000), seq(10), seq(10)];
    const { work, admitted } = schedulePrefill([], waiting, 0, { maxBatch: 16, maxPrefillTokens: 2048 });
    expect(work.map((w) => w.count)).toEqual([3000]);
    expect(admitted).toBe(1);
    const small = schedulePrefill([], [seq(10), seq(20), seq(3000)], 0, { maxBatch: 16, maxPrefillTokens: 2048 });
    expect(small.work.map((w) => w.count)).toEqual([10, 20]);
  });

  it('while streams decode: at most the chunk in all, a long prompt across steps, its cached prefix skipped', () => {
    const long = seq(100, 20);
    const first = schedulePrefill([], [long, seq(5)], 4, { maxBatch: 16, prefillChunkTokens: 32 });
    expect(first.work.map((w) => w.count)).toEqual([32]);
    expect(first.admitted).toBe(1);
    (long.cache as { length: number }).length += 32;
    const second = schedulePrefill([long], [seq(5)], 4, { maxBatch: 16, prefillChunkTokens: 32 });
    expect(second.work.map((w) => w.count)).toEqual([32]);
    (long.cache as { length: number }).length += 32;
    const third = schedulePrefill([long], [seq(5)], 4, { maxBatch: 16, prefillChunkTokens: 32 });
    expect(third.work.map((w) => w.count)).toEqual([16, 5]);
    expect(third.admitted).toBe(1);
  });

  it('admits no more than the batch has room for', () => {
    const { admitted } = schedulePrefill([seq(4)], [seq(4), seq(4), seq(4)], 13, { maxBatch: 16, prefillChunkTokens: 100 });
    expect(admitted).toBe(2);
  });
});
