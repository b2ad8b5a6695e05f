// The contract every KV cache keeps (Optimum's presents and the runtime's appended buffers), one shared test: length
// follows the positions fed, rollback drops the newest and refuses to grow, clear frees, and the memory it reports
// covers its positions.
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../src/runtime/decoder.ts';
import { heldBytes } from '../../src/runtime/kv-cache.ts';
import { tinyModel } from '../helpers/model-fixtures.ts';

describe.each([['AppendKvCache', true], ['PresentKvCache', false]] as const)('KV cache contract: %s', (_name, appendKv) => {
  it('length, rollback, clear, bytes and buffers', async () => {
    const decoder = await Decoder.open(tinyModel({ seed: 6 }), { appendKv });
    const cache = decoder.newCache();
    expect([cache.length, cache.bytes, heldBytes([cache])]).toEqual([0, 0, 0]);
    await decoder.forward([{ cache, tokens: [1, 2, 3, 4] }]);
    expect(cache.length).toBe(4);
    expect(cache.bytes).toBeGreaterThan(0);
    expect(heldBytes([cache])).toBeGreaterThanOrEqual(cache.bytes);
    await decoder.forward([{ cache, tokens: [5, 6, 7] }]);
    expect(cache.length).toBe(7);
    cache.rollback(5);
    expect(cache.length).toBe(5);
    expect(() => cache.rollback(6)).toThrow(/outside/);
    expect(() => cache.rollback(-1)).toThrow(/outside/);
    await decoder.forward([{ cache, tokens: [9] }]);
    expect(cache.length).toBe(6);
    cache.clear();
    expect([cache.length, heldBytes([cache])]).toEqual([0, 0]);
    await decoder.close();
  });

  it('fork: a copy of the first positions, in memory of its own, that continues as the original would', async () => {
    const decoder = await Decoder.open(tinyModel({ seed: 6 }), { appendKv });
    const [a, b] = [decoder.newCache(), decoder.newCache()];
    // Batched, with a rollback: the source lives in a shared batch home (or a batch's presents) with holes.
    await decoder.forward([{ cache: a, tokens: [1, 2, 3, 4, 5, 6] }, { cache: b, tokens: [1, 9, 8] }]);
    await decoder.forward([{ cache: a, tokens: [7, 8, 9] }, { cache: b, tokens: [2, 2, 2] }]);
    a.rollback(7);
    const fork = a.fork(5);
    expect(fork.length).toBe(5);
    expect(fork.buffers().some((x) => a.buffers().includes(x))).toBe(false);
    const fresh = decoder.newCache();
    const [[viaFork], [viaFresh]] = [await decoder.forward([{ cache: fork, tokens: [11, 12] }]), await decoder.forward([{ cache: fresh, tokens: [1, 2, 3, 4, 5, 11, 12] }])];
    // The same function of the same past (a pass of 2 positions and one of 7 may sum in another order: float32 noise).
    const [x, y] = [viaFork[viaFork.length - 1], viaFresh[viaFresh.length - 1]];
    expect(Math.max(...Array.from(x, (v, i) => Math.abs(v - y[i])))).toBeLessThan(1e-4);
    // The source is untouched and still continues.
    expect(a.length).toBe(7);
    await decoder.forward([{ cache: a, tokens: [3] }]);
    expect(a.length).toBe(8);
    expect(() => a.fork(9)).toThrow(/outside/);
    await decoder.close();
  });
});
