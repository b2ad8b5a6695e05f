// Seeds are used whole: two seeds that differ only above their low 32 bits give different sampled text, a seed gives
// the same text every time, and a seed JSON cannot carry exactly (beyond 2^53) is refused.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesModel } from '../../helpers/model-fixtures.ts';
import { Xoshiro128 } from '../../../src/runtime/rng.ts';

describe('seeds', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: 'ngram', servedModelName: 'model', engineThread: 'main' });
  });
  afterAll(() => server.close());
  const sample = async (seed: number | string) => {
    const body = `{"model":"model","prompt":"Once upon a time","max_tokens":40,"temperature":1,"seed":${seed}}`;
    return post(`${server.url}/v1/completions`, body);
  };

  it('draws from every bit of the seed', async () => {
    const low = 12345;
    for (const high of [2 ** 32, 2 ** 40, 2 ** 52, -(2 ** 32)]) {
      const a = new Xoshiro128(low);
      const b = new Xoshiro128(low + high);
      expect(Array.from({ length: 4 }, () => a.next())).not.toEqual(Array.from({ length: 4 }, () => b.next()));
    }
    const texts = await Promise.all([low, low + 2 ** 32, low + 2 ** 48, low].map(async (s) => (await sample(s)).json.choices[0].text));
    expect(texts[0]).toBe(texts[3]);
    expect(new Set(texts.slice(0, 3)).size).toBe(3);
  });

  it('refuses seeds beyond 2^53 - 1 (they would silently collide)', async () => {
    for (const seed of ['9007199254740992', '18446744073709551615', '-9007199254740993']) {
      const r = await sample(seed);
      expect(r.status).toBe(400);
      expect(r.json.error.param).toBe('seed');
    }
    expect((await sample(Number.MAX_SAFE_INTEGER)).status).toBe(200);
  });
});
