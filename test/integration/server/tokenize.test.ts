// POST /tokenize and /detokenize (vLLM's), and `model` optional on the generation routes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';

describe('tokenize, detokenize, model optional', () => {
  let server: TestServer;
  let tokenizer: TextTokenizer;
  let model: string;
  beforeAll(async () => {
    const dir = tinyModel({ seed: 8 });
    tokenizer = TextTokenizer.load(dir);
    server = await startServer({ target: dir, draft: 'none' });
    model = server.served.name;
  });
  afterAll(() => server.close());

  it('tokenizes a prompt (with and without special tokens) and chat messages; detokenizes back', async () => {
    const text = 'hello there, little model';
    const r = await post(`${server.url}/tokenize`, { model, prompt: text });
    expect(r.status).toBe(200);
    expect(r.json.tokens).toEqual(tokenizer.encode(text));
    expect(r.json.count).toBe(r.json.tokens.length);
    expect(r.json.max_model_len).toBe(server.served.maxModelLen);
    const bare = await post(`${server.url}/tokenize`, { prompt: text, add_special_tokens: false });
    expect(bare.json.tokens).toEqual(tokenizer.encode(text, false));
    const chat = await post(`${server.url}/tokenize`, { messages: [{ role: 'user', content: text }] });
    expect(chat.json.tokens).toEqual(tokenizer.encode(server.served.renderChat([{ role: 'user', content: text }]), false));
    const back = await post(`${server.url}/detokenize`, { model, tokens: bare.json.tokens });
    expect(back.json.prompt).toBe(tokenizer.decode(bare.json.tokens));
  });

  it('refuses what it cannot answer, naming the field', async () => {
    for (const [path, body, param, status] of [
      ['/tokenize', {}, 'prompt', 400],
      ['/tokenize', { prompt: 'a', messages: [{ role: 'user', content: 'a' }] }, 'messages', 400],
      ['/tokenize', { model: 'gpt-4', prompt: 'a' }, 'model', 404],
      ['/detokenize', { tokens: [1, 10 ** 9] }, 'tokens', 400],
      ['/detokenize', { tokens: 'x' }, 'tokens', 400],
    ] as const) {
      const r = await post(`${server.url}${path}`, body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.json.error.param).toBe(param);
    }
  });

  it('generation routes take requests without `model` (one served); a wrong name is still a 404', async () => {
    const r = await post(`${server.url}/v1/completions`, { prompt: 'a b', max_tokens: 3, temperature: 0 });
    expect(r.status).toBe(200);
    expect(r.json.model).toBe(model);
    const chat = await post(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
    expect(chat.status).toBe(200);
    const wrong = await post(`${server.url}/v1/completions`, { model: 'gpt-4', prompt: 'a b' });
    expect(wrong.status).toBe(404);
    // The openai SDK requires the field in its types; an empty cast is what a client that omits it sends.
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const sdk = await client.completions.create({ prompt: 'a b', max_tokens: 2 } as any);
    expect(sdk.choices[0].finish_reason).toBeDefined();
  });
});
