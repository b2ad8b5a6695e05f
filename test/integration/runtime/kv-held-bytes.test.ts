// KV memory reported as held, not as positions: a home's spare capacity counts, a batch's shared buffers count once,
// and the past buffers a decoder keeps for batched passes count too.
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { heldBytes } from '../../../src/runtime/kv-cache.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

describe.each([true, false])('held KV bytes (appended KV: %s)', (appendKv) => {
  it('count capacity, shared buffers once, and the decoder\'s past buffers', async () => {
    const decoder = await Decoder.open(tinyModel({ seed: 9 }), { appendKv, packedPast: false });
    const [a, b] = [decoder.newCache(), decoder.newCache()];
    expect(heldBytes([a, b])).toBe(0);
    await decoder.forward([{ cache: a, tokens: [1, 2, 3, 4, 5] }, { cache: b, tokens: [1, 2] }]);
    await decoder.forward([{ cache: a, tokens: [6] }, { cache: b, tokens: [7] }]);
    // Both rows live in one set of buffers: counted once, and at least what their positions take.
    expect(a.buffers().length).toBeGreaterThan(0);
    expect(a.buffers()).toEqual(b.buffers());
    const shared = a.buffers().reduce((n, x) => n + x.byteLength, 0);
    expect(heldBytes([a, b])).toBe(shared);
    expect(shared).toBeGreaterThanOrEqual(a.bytes + b.bytes);
    const withFeeds = heldBytes([a, b], decoder.feedBuffers());
    expect(withFeeds).toBeGreaterThanOrEqual(shared);
    if (!appendKv) expect(decoder.feedBuffers().length).toBeGreaterThan(0); // the batched pass's past buffers
    a.clear();
    b.clear();
    expect(heldBytes([a, b])).toBe(0);
    await decoder.close();
  });
});
