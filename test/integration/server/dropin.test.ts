// What OpenAI clients and frameworks send by default is accepted (store, metadata, service_tier, tool_choice "none",
// parallel_tool_calls); a known path with another method is a 405; type and enum errors say what is expected; every
// response is counted by route and status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

describe('a drop-in for OpenAI clients', () => {
  let server: TestServer;
  let model: string;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ seed: 8 }), draft: 'none' });
    model = server.served.name;
  });
  afterAll(() => server.close());

  it('accepts store, metadata, service_tier, tool_choice "none" and parallel_tool_calls through the openai SDK', async () => {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const chat = await client.chat.completions.create({
      model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4, store: false, metadata: { team: 'a' }, service_tier: 'auto',
      tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }], tool_choice: 'none', parallel_tool_calls: true,
    });
    expect(chat.choices[0].message.tool_calls).toBeUndefined();
    const completion = await client.completions.create({ model, prompt: 'hi', max_tokens: 4, store: true, metadata: { x: 'y' }, service_tier: 'default' } as any);
    expect(completion.choices).toHaveLength(1);
  });

  it('a known path with another method is a 405 with Allow', async () => {
    const r = await fetch(`${server.url}/v1/completions`);
    expect(r.status).toBe(405);
    expect(r.headers.get('allow')).toBe('POST');
    expect((await r.json()).error.message).toMatch(/GET is not allowed on \/v1\/completions; use POST/);
    expect((await fetch(`${server.url}/v1/nothing`)).status).toBe(404);
  });

  it('type and enum errors say what is expected', async () => {
    const typed = await post(`${server.url}/v1/completions`, { model, prompt: 'a', max_tokens: 'x' });
    expect(typed.json.error.message).toBe("'max_tokens' must be an integer or null");
    const enumed = await post(`${server.url}/v1/completions`, { model, prompt: 'a', service_tier: 'gold' });
    expect(enumed.json.error.message).toMatch(/must be one of "auto", "default", "flex", "scale", "priority", null/);
    expect(enumed.json.error.param).toBe('service_tier');
  });

  it('counts every response by route and status, 4xx included', async () => {
    await post(`${server.url}/v1/completions`, { model, prompt: 'a', temperature: 'hot' });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    expect(text).toMatch(/specserve_http_requests_total\{route="\/v1\/completions",status="400"\} [1-9]/);
    expect(text).toMatch(/specserve_http_requests_total\{route="\/v1\/completions",status="405"\} [1-9]/);
    expect(text).toMatch(/specserve_http_requests_total\{route="\/v1\/chat\/completions",status="200"\} [1-9]/);
  });
});
