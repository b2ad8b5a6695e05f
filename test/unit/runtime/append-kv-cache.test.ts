// The runtime's own KV buffers (append-kv-cache.ts) on hand-made numbers: where appended positions land, what a
// rollback leaves, when a home is kept and when caches move (and that moving copies exactly their valid slots).
import { describe, expect, it } from 'vitest';
import { AppendKvCache } from '../../../src/runtime/append-kv-cache.ts';

// 1 layer (2 blocks: key, value), 2 KV heads, head size 2.
const cache = () => new AppendKvCache(1, 2, 2, 'float32');
/** kv_new for B rows and S positions whose value encodes (block, row, position, head, x). */
function kvNew(B: number, S: number): Float32Array {
  const out = new Float32Array(2 * B * S * 4);
  for (let p = 0; p < 2; p++) for (let b = 0; b < B; b++) for (let i = 0; i < S; i++) for (let h = 0; h < 2; h++) for (let x = 0; x < 2; x++) {
    out[(((p * B + b) * S + i) * 2 + h) * 2 + x] = 10000 * p + 1000 * b + 100 * i + 10 * h + x;
  }
  return out;
}
/** Slot j of head h in block p of a cache's row, as [x0, x1]. */
function slot(c: AppendKvCache, p: number, h: number, j: number): number[] {
  const { home, row } = c.place!;
  const at = ((row * 2 + h) * home.capacity + j) * 2;
  return Array.from(home.blocks[p].subarray(at, at + 2));
}

describe('AppendKvCache', () => {
  it('writes new positions after the length, per block and head; a rollback lets the next pass overwrite', () => {
    const c = cache();
    const home = AppendKvCache.homeFor([c], 3);
    expect(home.capacity % 8).toBe(0);
    expect(home.capacity).toBeGreaterThanOrEqual(3 + 8);
    c.append(kvNew(1, 3), 1, 3, 0, 3);
    expect(c.length).toBe(3);
    expect(slot(c, 0, 1, 2)).toEqual([210, 211]);
    expect(slot(c, 1, 0, 1)).toEqual([10100, 10101]);
    c.rollback(1);
    expect(c.bytes).toBe(1 * 2 * 2 * 2 * 4);
    expect(AppendKvCache.homeFor([c], 2)).toBe(home); // room: kept
    c.append(kvNew(1, 2), 1, 2, 0, 2);
    expect([c.length, slot(c, 0, 0, 1), slot(c, 0, 0, 2)]).toEqual([3, [0, 1], [100, 101]]);
    expect(() => c.rollback(4)).toThrow(/outside/);
  });

  it('a batch keeps its home while the same rows run in the same order; other company moves them, slots copied', () => {
    const [a, b] = [cache(), cache()];
    AppendKvCache.homeFor([a], 2);
    a.append(kvNew(1, 2), 1, 2, 0, 2);
    const batch = AppendKvCache.homeFor([a, b], 1);
    expect(batch.rows).toBe(2);
    expect(slot(a, 0, 1, 1)).toEqual([110, 111]); // moved with its slots
    const out = kvNew(2, 1);
    a.append(out, 2, 1, 0, 1);
    b.append(out, 2, 1, 1, 1);
    expect([slot(a, 1, 0, 2), slot(b, 1, 1, 0)]).toEqual([[10000, 10001], [11010, 11011]]);
    expect(AppendKvCache.homeFor([a, b], 1)).toBe(batch);
    const swapped = AppendKvCache.homeFor([b, a], 1);
    expect(swapped).not.toBe(batch);
    expect([b.place!.row, slot(b, 1, 1, 0), slot(a, 0, 1, 1)]).toEqual([0, [11010, 11011], [110, 111]]);
    // Growing past the capacity moves too.
    const grown = AppendKvCache.homeFor([b, a], swapped.capacity);
    expect(grown.capacity).toBeGreaterThan(swapped.capacity);
    expect(slot(a, 0, 0, 2)).toEqual([0, 1]);
  });

  it('refuses to append without a home or past its capacity', () => {
    const c = cache();
    expect(() => c.append(kvNew(1, 1), 1, 1, 0, 1)).toThrow(/no room/);
    const home = AppendKvCache.homeFor([c], 1);
    expect(() => c.append(kvNew(1, 1), 1, 1, 0, home.capacity + 1)).toThrow(/no room/);
    c.clear();
    expect([c.length, c.place]).toEqual([0, null]);
  });
});
