// Temperatures between 0 and vLLM's 1e-5 are greedy, everywhere: a subnormal temperature once turned the softmax into
// NaN and the text into noise (plain decoding, speculation, fused sampled steps).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesModel, storiesDraftModel } from '../../helpers/model-fixtures.ts';
import { isGreedy, MIN_TEMPERATURE } from '../../../src/runtime/sampling.ts';

describe('tiny temperatures', () => {
  let server: TestServer;
  beforeAll(async () => {
    // The distilled draft on stories260K: lone sampled requests run fused sampled steps there.
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), servedModelName: 'model', engineThread: 'main' });
  });
  afterAll(() => server.close());

  it('are greedy below 1e-5 (and sampled from it on)', () => {
    for (const t of [0, 1e-45, 1e-39, 1e-20, 9.99e-6]) expect(isGreedy({ temperature: t, topK: 0, topP: 1, minP: 0 })).toBe(true);
    expect(isGreedy({ temperature: MIN_TEMPERATURE, topK: 0, topP: 1, minP: 0 })).toBe(false);
  });

  it('give the greedy text through the server, with and without speculation, on both endpoints', async () => {
    const ask = (temperature: number, speculative: boolean) =>
      post(`${server.url}/v1/completions`, { model: 'model', prompt: 'Once upon a time', max_tokens: 40, temperature, speculative });
    const greedy = (await ask(0, false)).json.choices[0].text;
    expect(greedy).toMatch(/^[\w ,.'!?\n"-]+$/);
    for (const t of [1e-45, 1e-39, 1e-30, 5e-6]) {
      for (const speculative of [false, true]) {
        const r = await ask(t, speculative);
        expect(r.status).toBe(200);
        expect(r.json.choices[0].text, `temperature ${t}, speculative ${speculative}`).toBe(greedy);
      }
    }
    const chat = await post(`${server.url}/v1/chat/completions`, { model: 'model', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20, temperature: 1e-40 });
    const chatGreedy = await post(`${server.url}/v1/chat/completions`, { model: 'model', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 20, temperature: 0 });
    expect(chat.json.choices[0].message.content).toBe(chatGreedy.json.choices[0].message.content);
  });
});
