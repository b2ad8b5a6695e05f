// The pool of freed KV home memory: reused by a home that fits (not by one far smaller), bounded, and a home's memory
// comes back only when its last cache leaves it.
import { describe, expect, it } from 'vitest';
import { KvBufferPool } from '../../../src/runtime/kv-buffer-pool.ts';
import { AppendKvCache } from '../../../src/runtime/append-kv-cache.ts';

describe('KvBufferPool', () => {
  it('reuses a freed buffer for a home that fits and is at least half its size, else allocates', () => {
    const pool = new KvBufferPool('float32');
    const a = pool.take(1000);
    pool.give(a.subarray(0, 10));
    expect(pool.take(400).buffer).not.toBe(a.buffer); // too small a home for it
    const b = pool.take(800);
    expect(b.buffer).toBe(a.buffer);
    expect(b.length).toBe(800);
    expect(pool.take(800).buffer).not.toBe(a.buffer); // taken: not handed out twice
  });

  it('prepares a buffer ahead (one only, none where a free one fits), steps through it, and hands it to the next take', () => {
    const pool = new KvBufferPool('float32');
    pool.prepare(10_000);
    const prepared = pool.buffers()[0];
    expect(prepared.byteLength).toBe(40_000);
    pool.prepare(9_000); // the prepared one serves
    expect(pool.buffers()).toHaveLength(1);
    for (let i = 0; i < 6; i++) pool.step(); // past the end: harmless
    const home = pool.take(9_500);
    expect(home.buffer).toBe(prepared);
    expect(pool.buffers()).toEqual([]);
    pool.give(home);
    pool.prepare(9_000); // a free buffer fits: nothing new
    expect(pool.buffers()).toEqual([prepared]);
  });

  it('a growing batch prepares its next home while it still has room, and moves into that memory', () => {
    const pool = new KvBufferPool('float32');
    // 2 layers x 4 heads x 64 dims: a slot of one row is 4 KB, so a home of 4 rows past 256 positions is over 4 MB.
    const caches = [0, 1, 2, 3].map(() => new AppendKvCache(2, 4, 64, 'float32', pool));
    let home = AppendKvCache.homeFor(caches, 300);
    caches.forEach((c) => (c.length = 300));
    const first = home;
    while (pool.buffers().length === 0) {
      home = AppendKvCache.homeFor(caches, 1);
      expect(home).toBe(first);
      caches.forEach((c) => c.length++);
    }
    const prepared = pool.buffers()[0];
    while (home === first) {
      home = AppendKvCache.homeFor(caches, 1);
      caches.forEach((c) => c.length++);
    }
    expect(home.all.buffer).toBe(prepared);
  });

  it('keeps at most four buffers, the largest', () => {
    const pool = new KvBufferPool('float16');
    for (const n of [10, 20, 30, 40, 50, 60]) pool.give(new Uint16Array(n));
    expect(pool.buffers().map((b) => b.byteLength).sort((x, y) => x - y)).toEqual([60, 80, 100, 120]);
  });

  it("gets a home's memory back only when the last of its caches leaves", () => {
    const pool = new KvBufferPool('float32');
    const caches = [0, 1].map(() => new AppendKvCache(2, 2, 4, 'float32', pool));
    const home = AppendKvCache.homeFor(caches, 3);
    caches[0].clear();
    expect(pool.buffers()).toEqual([]);
    caches[1].clear();
    expect(pool.buffers()).toEqual([home.all.buffer]);
    // The next home of that size reuses it, and a move keeps the rows' contents.
    const next = [0, 1].map(() => new AppendKvCache(2, 2, 4, 'float32', pool));
    const again = AppendKvCache.homeFor(next, 3);
    expect(again.all.buffer).toBe(home.all.buffer);
    again.blocks[0][0] = 42;
    next[0].length = 1;
    const moved = AppendKvCache.homeFor([next[0]], 40);
    expect(moved.blocks[0][0]).toBe(42);
    expect(pool.buffers()).toEqual([]); // next[1] still lives in the old home
  });
});
