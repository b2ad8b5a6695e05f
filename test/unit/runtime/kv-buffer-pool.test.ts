// The memory of KV homes: a freed buffer reused by a home that fits (not by one far smaller), bounded; a home's memory
// back only when its last cache leaves it; a growing batch grows inside its buffer's room with every position kept,
// and the memory its next home takes is faulted in ahead, a slice per pass.
import { describe, expect, it } from 'vitest';
import { KvBufferPool } from '../../../src/runtime/kv-buffer-pool.ts';
import { AppendKvCache } from '../../../src/runtime/append-kv-cache.ts';

// 2 layers x 4 heads x 64 dims: a slot of one row is 4 KB, so a home of 4 rows past 256 positions is over 4 MB.
const LAYERS = 2;
const HEADS = 4;
const HD = 64;

/** A value for each row, layer part, head, position and dimension (distinct for any shift of a segment; exact in
 * float32). */
const mark = (row: number, p: number, h: number, pos: number, x: number) => ((((row * 8 + p) * 8 + h) * 4096 + pos) * 64 + x) % 16777213;

function fill(caches: AppendKvCache[]): void {
  caches.forEach((c) => {
    const { home, row } = c.place!;
    for (let p = 0; p < 2 * LAYERS; p++) {
      for (let h = 0; h < HEADS; h++) {
        for (let pos = 0; pos < c.length; pos++) {
          for (let x = 0; x < HD; x++) home.blocks[p][((row * HEADS + h) * home.capacity + pos) * HD + x] = mark(row, p, h, pos, x);
        }
      }
    }
  });
}

function intact(caches: AppendKvCache[]): boolean {
  return caches.every((c, b) => {
    const { home, row } = c.place!;
    for (let p = 0; p < 2 * LAYERS; p++) {
      for (let h = 0; h < HEADS; h++) {
        for (let pos = 0; pos < c.length; pos++) {
          for (let x = 0; x < HD; x++) {
            if (home.blocks[p][((row * HEADS + h) * home.capacity + pos) * HD + x] !== mark(b, p, h, pos, x)) return false;
          }
        }
      }
    }
    return true;
  });
}

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

  it('makes a buffer with room past the home, and a freed one serves a home that fits in that room', () => {
    const pool = new KvBufferPool('float32');
    const a = pool.take(1000, 2000);
    expect(a.length).toBe(1000);
    expect(pool.room(a)).toBe(2000);
    pool.give(a);
    expect(pool.take(1500).buffer).toBe(a.buffer);
  });

  it('faults in the room of the current buffer where the next home fits there, a slice a pass, never the home', () => {
    const pool = new KvBufferPool('float32');
    const home = pool.take(10_000, 40_000);
    const whole = new Float32Array(home.buffer);
    whole.fill(NaN);
    home.fill(7);
    // Whether every page (1024 float32s) overlapping [from, to) has a zero in that range: one write per page faults it.
    const faulted = (from: number, to: number) => {
      for (let at = from; at < to; at = (Math.floor(at / 1024) + 1) * 1024) {
        if (!whole.subarray(at, Math.min(to, (Math.floor(at / 1024) + 1) * 1024)).some((v) => v === 0)) return false;
      }
      return true;
    };
    pool.readyFor(home, 10_000, 30_000, 60_000, 4);
    expect(faulted(10_000, 15_000)).toBe(true); // a quarter of the way
    expect(faulted(15_000, 30_000)).toBe(false);
    for (let pass = 3; pass >= 1; pass--) pool.readyFor(home, 10_000, 30_000, 60_000, pass);
    expect(faulted(10_000, 30_000)).toBe(true);
    expect(whole.subarray(30_000).every((v) => Number.isNaN(v))).toBe(true);
    expect(home.every((v) => v === 7)).toBe(true);
    expect(pool.buffers()).toEqual([]); // its own room served
    // Freed and taken again, it knows how far it was faulted: more room is faulted from there on.
    pool.give(home);
    const again = pool.take(20_000, 40_000);
    expect(again.buffer === home.buffer).toBe(true);
    whole.fill(NaN, 30_000);
    pool.readyFor(again, 20_000, 36_000, 72_000, 1);
    expect(faulted(30_000, 36_000)).toBe(true);
  });

  it('makes one buffer ahead where the next home does not fit the room, however many passes, and hands it out', () => {
    const pool = new KvBufferPool('float32');
    const home = pool.take(10_000, 20_000);
    for (let pass = 0; pass < 4; pass++) pool.readyFor(home, 10_000, 25_000, 50_000, 4 - pass);
    expect(pool.buffers().map((b) => b.byteLength)).toEqual([200_000]);
    const [made] = pool.buffers();
    const next = pool.take(25_000, 50_000);
    expect(next.buffer === made).toBe(true);
    expect(pool.buffers()).toEqual([]);
    expect(pool.room(next)).toBe(50_000);
  });

  it.each([['float32', 4], ['float16', 1], ['float16', 3]] as const)('grows %s homes of %i rows in place, every position kept', (type, rows) => {
    const pool = new KvBufferPool(type);
    const caches = Array.from({ length: rows }, () => new AppendKvCache(LAYERS, HEADS, HD, type, pool));
    // Large homes (over 4 MB) get room: 2 KB a position a row in float16, 4 KB in float32.
    const positions = Math.floor((type === 'float16' ? 4400 : 2200) / rows);
    let home = AppendKvCache.homeFor(caches, positions);
    caches.forEach((c, b) => (c.length = positions - 3 * b));
    const value = (row: number, p: number, h: number, pos: number, x: number) => (type === 'float16' ? mark(row, p, h, pos, x) % 65521 : mark(row, p, h, pos, x));
    const check = () => caches.every((c, b) => {
      const { home: at, row } = c.place!;
      for (let p = 0; p < 2 * LAYERS; p++) for (let h = 0; h < HEADS; h++) for (let pos = 0; pos < c.length; pos++) {
        for (let x = 0; x < HD; x++) if (at.blocks[p][((row * HEADS + h) * at.capacity + pos) * HD + x] !== value(b, p, h, pos, x)) return false;
      }
      return true;
    });
    caches.forEach((c, b) => {
      for (let p = 0; p < 2 * LAYERS; p++) for (let h = 0; h < HEADS; h++) for (let pos = 0; pos < c.length; pos++) {
        for (let x = 0; x < HD; x++) home.blocks[p][((b * HEADS + h) * home.capacity + pos) * HD + x] = value(b, p, h, pos, x);
      }
    });
    const before = home;
    home = AppendKvCache.homeFor(caches, before.capacity - Math.min(...caches.map((c) => c.length)) + 1);
    expect(home.capacity).toBeGreaterThan(before.capacity);
    expect(home.all.buffer === before.all.buffer).toBe(true);
    expect(check()).toBe(true);
  });

  it('a growing batch grows in place within its buffer, every position kept, then moves into the memory made ahead', () => {
    const pool = new KvBufferPool('float32');
    const caches = [0, 1, 2, 3].map(() => new AppendKvCache(LAYERS, HEADS, HD, 'float32', pool));
    let home = AppendKvCache.homeFor(caches, 300);
    caches.forEach((c, b) => (c.length = 300 - b)); // rows of different lengths
    fill(caches);
    const buffer = home.all.buffer;
    let inPlace = 0;
    let prepared: ArrayBufferLike | undefined;
    while (home.all.buffer === buffer) {
      const before = home;
      home = AppendKvCache.homeFor(caches, 3);
      if (home !== before) {
        if (home.all.buffer === buffer) inPlace++;
        expect(intact(caches)).toBe(true);
      }
      if (home.all.buffer === buffer) prepared = pool.buffers()[0] ?? prepared;
      caches.forEach((c, b) => {
        c.length += 3;
        const { home: h, row } = c.place!;
        for (let p = 0; p < 2 * LAYERS; p++) {
          for (let hh = 0; hh < HEADS; hh++) {
            for (let pos = c.length - 3; pos < c.length; pos++) {
              for (let x = 0; x < HD; x++) h.blocks[p][((row * HEADS + hh) * h.capacity + pos) * HD + x] = mark(b, p, hh, pos, x);
            }
          }
        }
      });
    }
    expect(inPlace).toBeGreaterThanOrEqual(2);
    // (Compared by identity: a failing toBe would diff megabytes.)
    expect(prepared !== undefined && home.all.buffer === prepared).toBe(true);
    expect(intact(caches)).toBe(true);
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
    expect(pool.buffers()).toHaveLength(1);
    expect(pool.buffers()[0]).toBe(home.all.buffer); // that memory itself (toBe: identity)
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
