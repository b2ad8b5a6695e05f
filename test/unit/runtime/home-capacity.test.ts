// How many slots an appended-KV home gets: a few spare ones for a small home, a quarter more for a large one, whose
// moves cost several steps; always aligned and never less than what is needed.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { homeCapacity } from '../../../src/runtime/append-kv-cache.ts';

describe('homeCapacity', () => {
  it('keeps a small home tight and grows a large one geometrically', () => {
    expect(homeCapacity(100, 1024)).toBe(112); // 100 KB: 8 spare, aligned
    expect(homeCapacity(100, 16 * 37 * 1024)).toBe(128); // a batch of 16 of a 100M model: a quarter more
    expect(homeCapacity(1000, 1024)).toBe(1064); // a sixteenth
  });

  it('always holds what is needed plus at least 8 slots, in multiples of 8', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 1 << 16 }), fc.integer({ min: 0, max: 1 << 22 }), (needed, bytes) => {
      const c = homeCapacity(needed, bytes);
      return c % 8 === 0 && c >= needed + 8 && c <= needed + Math.max(8, needed >> 2) + 8;
    }));
  });
});
