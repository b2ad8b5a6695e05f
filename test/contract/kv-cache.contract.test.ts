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
});
