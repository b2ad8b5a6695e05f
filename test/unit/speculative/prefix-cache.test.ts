// The prefix cache's bookkeeping on the runtime's own KV caches (no model): the longest cached prefix wins and becomes
// the most recently used; entries an entry covers go; the least recently used go while over the budget; an entry over
// the whole budget is refused; and a finished sequence's cache is copied into the memory of the entries it replaces
// rather than into fresh memory.
import { describe, expect, it } from 'vitest';
import { AppendKvCache } from '../../../src/runtime/append-kv-cache.ts';
import { KvBufferPool } from '../../../src/runtime/kv-buffer-pool.ts';
import { PrefixCache } from '../../../src/speculative/prefix-cache.ts';

// 1 layer, 1 KV head, head size 4: a position is 2 x 4 float32 = 32 bytes.
const BYTES_PER_POSITION = 32;

function setup(budgetPositions: number) {
  const pool = new KvBufferPool('float32');
  const cache = () => new AppendKvCache(1, 1, 4, 'float32', pool);
  /** Caches filled with `lengths` positions in one batch home (one row each); the value of position i of row b is
   * 1000 * (b + 1) + i. */
  const filled = (...lengths: number[]) => {
    const caches = lengths.map(cache);
    const S = Math.max(...lengths);
    AppendKvCache.homeFor(caches, S);
    const kv = new Float32Array(2 * caches.length * S * 4);
    for (let p = 0; p < 2; p++) for (let b = 0; b < caches.length; b++) for (let i = 0; i < S; i++) kv.fill(1000 * (b + 1) + i, ((p * caches.length + b) * S + i) * 4, ((p * caches.length + b) * S + i + 1) * 4);
    caches.forEach((c, b) => c.append(kv, caches.length, S, b, lengths[b]));
    return caches;
  };
  return { prefix: new PrefixCache(budgetPositions * BYTES_PER_POSITION), filled };
}
const tokens = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
const first_ = (c: AppendKvCache) => c.place!.home.blocks[0][c.place!.row * c.place!.home.capacity * 4];

describe('PrefixCache', () => {
  it('serves the longest cached prefix, keeps the recently used, drops covered entries and refuses one over budget', () => {
    const { prefix, filled } = setup(100);
    const [a] = filled(40);
    prefix.keepFinished(tokens(0, 40), a, null);
    const [b] = filled(40);
    prefix.keepFinished([...tokens(0, 20), ...tokens(500, 20)], b, null); // shares 20 with a
    expect(prefix.lookup([...tokens(0, 30), 9])!.length).toBe(30); // a's, which is now the most recent
    const [c] = filled(30);
    prefix.keepFinished(tokens(900, 30), c, null); // 110 positions: b, the least recently used, goes
    expect(prefix.bytes).toBe(70 * BYTES_PER_POSITION);
    expect(prefix.lookup([...tokens(0, 20), ...tokens(500, 5)])!.length).toBe(20); // only a's 20 left
    const [d] = filled(45);
    prefix.keepFinished(tokens(0, 45), d, null); // covers a: a goes
    expect(prefix.bytes).toBe(75 * BYTES_PER_POSITION);
    const [e] = filled(101);
    prefix.keepFinished(tokens(2000, 101), e, null); // over the whole budget: refused, nothing evicted
    expect([prefix.bytes, prefix.lookup([...tokens(0, 45), 1])!.length]).toEqual([75 * BYTES_PER_POSITION, 45]);
  });

  it('copies a finished cache into the memory of the entry it evicts, not into fresh memory', () => {
    const { prefix, filled } = setup(64);
    const [first] = filled(60);
    prefix.keepFinished(tokens(0, 60), first, null);
    first.clear(); // as the engine does after keeping it
    const entryMemory = prefix.buffers[0];
    const kept = prefix.startFrom([...tokens(0, 60), 7], false)!;
    expect(kept.cache.length).toBe(60);
    expect(first_(kept.cache as AppendKvCache)).toBe(1000); // its positions, copied for the new request
    // A sequence of a batch of two finishes: the budget holds one entry, so the first entry goes, and the copy takes
    // its memory (freed to the pool before the copy).
    const [x, y] = filled(58, 60);
    prefix.keepFinished(tokens(3000, 60), y, null);
    expect(prefix.lookup([...tokens(3000, 40), 1])).not.toBeNull();
    expect(prefix.lookup([...tokens(0, 40), 1])).toBeNull();
    expect(x.length).toBe(58); // its batch companion is untouched
    const entry = prefix.startFrom([...tokens(3000, 60), 1], false)!.cache as AppendKvCache;
    expect(first_(entry)).toBe(2000);
    expect(prefix.buffers).toHaveLength(1);
    expect(prefix.buffers[0]).toBe(entryMemory); // the same memory, not an equal copy (toBe: identity)
  });
});
