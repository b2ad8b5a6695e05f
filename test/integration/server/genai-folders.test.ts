// onnxruntime-genai folders whose graph cannot take a past and several new positions in one pass (the export's
// attention-mask reshaping fails there): the server finds out at load, says so in one log line and serves them plainly,
// so that a Predicted Output or n-gram drafting never turns into a 500.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { startServer, post, type TestServer } from '../../helpers/test-server.ts';
import { SHARED_MODELS } from '../../helpers/shared-models.ts';

const LLAMA = join(SHARED_MODELS, 'random-fixtures/ortgenai-tiny-random-LlamaForCausalLM-fp16');

describe('an onnxruntime-genai folder that cannot verify several positions', () => {
  let server: TestServer;
  const logs: string[] = [];
  beforeAll(async () => {
    server = await startServer({ target: LLAMA, servedModelName: 'genai' }, undefined, (m) => logs.push(m));
  });
  afterAll(() => server.close());

  it('is served plainly with one log line saying why', () => {
    const lines = logs.filter((l) => /speculation off/.test(l));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/ortgenai-tiny-random-LlamaForCausalLM-fp16.*cannot take a past and several new positions in one pass.*served without speculation/);
    expect(logs.some((l) => /proposer none/.test(l))).toBe(true);
  });

  it('answers a Predicted Output equal to its own greedy output, and a repetitive prompt (n-gram drafting), as plain decoding does', async () => {
    const chat = { model: 'genai', messages: [{ role: 'user', content: 'Hello world, hello world' }], max_tokens: 24, temperature: 0 };
    const plain = await post(`${server.url}/v1/chat/completions`, { ...chat, speculative: false });
    expect(plain.status).toBe(200);
    const text = plain.json.choices[0].message.content as string;
    const predicted = await post(`${server.url}/v1/chat/completions`, { ...chat, prediction: { type: 'content', content: text } });
    expect(predicted.status).toBe(200);
    expect(predicted.json.choices[0].message.content).toBe(text);
    const body = { model: 'genai', prompt: 'a b c a b c a b c a b c', max_tokens: 16, temperature: 0 };
    const repeated = await post(`${server.url}/v1/completions`, body);
    expect(repeated.status).toBe(200);
    expect(repeated.json.choices[0].text).toBe((await post(`${server.url}/v1/completions`, { ...body, speculative: false })).json.choices[0].text);
  });
});
