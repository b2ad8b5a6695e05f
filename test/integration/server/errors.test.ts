// Error cases over raw HTTP: OpenAI's error shape, the right status, the parameter named.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

function expectError(r: { status: number; json: any }, status: number, code: string, param?: string | null, message?: RegExp) {
  expect(r.status).toBe(status);
  expect(Object.keys(r.json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(r.json.error.code).toBe(code);
  if (param !== undefined) expect(r.json.error.param).toBe(param);
  if (message) expect(r.json.error.message).toMatch(message);
  expect(JSON.stringify(r.json)).not.toMatch(/at .*\.ts:\d+/); // no stack traces
}

describe('API errors', () => {
  let server: TestServer;
  let keyed: TestServer;
  let full: TestServer;
  const model = 'model';
  let url: string;
  beforeAll(async () => {
    const dir = tinyModel({ maxPositionEmbeddings: 64 });
    server = await startServer({ target: dir, draft: 'ngram', bodyLimitBytes: 4096, maxN: 4, maxStop: 4 });
    keyed = await startServer({ target: dir, draft: 'none', apiKey: 'sekret', publicMetrics: false });
    full = await startServer({ target: dir, draft: 'none', maxBatch: 1, maxQueue: 0 });
    url = `${server.url}/v1/completions`;
  });
  afterAll(async () => {
    for (const s of [server, keyed, full]) await s.close();
  });

  it('400 for wrong types, missing and unknown fields, naming the parameter', async () => {
    expectError(await post(url, { model, prompt: 'a', max_tokens: 'ten' }), 400, 'invalid_request', 'max_tokens');
    expectError(await post(url, { model, prompt: 'a', temperature: -1 }), 400, 'invalid_request', 'temperature');
    expectError(await post(url, { model }), 400, 'invalid_request', 'prompt', /'prompt' is a required property/);
    expectError(await post(url, { model, prompt: 'a', frobnicate: 1 }), 400, 'invalid_request', 'frobnicate', /Unrecognized request argument/);
    expectError(await post(url, { model, prompt: { a: 1 } }), 400, 'invalid_request', 'prompt', /array of token ids/);
    expectError(await post(url, { model, prompt: 'a', speculative: 'yes' }), 400, 'invalid_request', 'speculative', /false, true, or an object/);
    expectError(await post(url, { model, prompt: 'a', stream_options: 3 }), 400, 'invalid_request', 'stream_options', /include_usage/);
    expectError(await post(url, { model, prompt: [1, 99999] }), 400, 'invalid_request', 'prompt', /outside the vocabulary/);
    expectError(await post(url, { model, prompt: 'a', n: 5 }), 400, 'invalid_request', 'n', /at most 4/);
    expectError(await post(url, { model, prompt: 'a', stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'invalid_request', 'stop');
    expectError(await post(url, { model, prompt: 'a', presence_penalty: 2.5 }), 400, 'invalid_request', 'presence_penalty');
    expectError(await post(url, { model, prompt: 'a', logit_bias: { 99999: 5 } }), 400, 'invalid_request', 'logit_bias', /outside the vocabulary/);
  });

  it('400 for the context window: prompt too long, max_tokens beyond it', async () => {
    expectError(await post(url, { model, prompt: Array(70).fill(5) }), 400, 'context_length_exceeded', 'prompt', /maximum context length is 64/);
    expectError(await post(url, { model, prompt: 'a b', max_tokens: 100 }), 400, 'context_length_exceeded', 'max_tokens', /requested/);
  });

  it('400 for bad JSON and bad UTF-8; 415 for another content type; 413 for a large body', async () => {
    expectError(await post(url, '{"model": '), 400, 'invalid_request', null, /parse the JSON body/);
    const badUtf8 = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: Buffer.concat([Buffer.from('{"model":"model","prompt":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]) });
    expectError({ status: badUtf8.status, json: await badUtf8.json() }, 400, 'invalid_request', null, /UTF-8/);
    const text = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' });
    expectError({ status: text.status, json: await text.json() }, 415, 'unsupported_media_type');
    expectError(await post(url, { model, prompt: 'x'.repeat(5000) }), 413, 'request_too_large', null, /limit of 4096 bytes/);
  });

  it('404 for an unknown model and an unknown route', async () => {
    expectError(await post(url, { model: 'gpt-9', prompt: 'a' }), 404, 'model_not_found', 'model');
    const r = await fetch(`${server.url}/v1/nothing`);
    expectError({ status: r.status, json: await r.json() }, 404, 'not_found');
  });

  it('401 without or with a wrong API key; /health public and /metrics protected as configured', async () => {
    const u = `${keyed.url}/v1/completions`;
    expectError(await post(u, { model, prompt: 'a', max_tokens: 1 }), 401, 'invalid_api_key', null, /Missing API key/);
    expectError(await post(u, { model, prompt: 'a', max_tokens: 1 }, { authorization: 'Bearer nope' }), 401, 'invalid_api_key', null, /Incorrect/);
    expect((await post(u, { model, prompt: 'a', max_tokens: 1 }, { authorization: 'Bearer sekret' })).status).toBe(200);
    expect((await fetch(`${keyed.url}/health`)).status).toBe(200);
    expect((await fetch(`${keyed.url}/metrics`)).status).toBe(401);
    expect((await fetch(`${keyed.url}/metrics`, { headers: { authorization: 'Bearer sekret' } })).status).toBe(200);
  });

  it('429 with Retry-After when the queue is full', async () => {
    // Capacity is one running request and no queue: while one runs, the next is refused.
    const running = post(`${full.url}/v1/completions`, { model, prompt: 'a', max_tokens: 50, ignore_eos: true });
    await new Promise((r) => setTimeout(r, 20));
    const r = await post(`${full.url}/v1/completions`, { model, prompt: 'a' });
    expectError(r, 429, 'queue_full');
    expect(r.headers.get('retry-after')).toBe('1');
    expect((await running).status).toBe(200);
  });

  it('500 in OpenAI shape, without a stack trace, when the engine fails; the server keeps serving', async () => {
    server.served.engine.faultInjection = { badToken: 10 ** 9 }; // an out-of-range id makes the Gather in ONNX Runtime fail
    const first = post(url, { model, prompt: 'a b c', max_tokens: 5, speculative: false });
    expectError(await first, 500, 'server_error', null, /engine failed/);
    const ok = await post(url, { model, prompt: 'a b c', max_tokens: 5 });
    expect(ok.status).toBe(200);
    expect(ok.json.choices[0].finish_reason).toBe('length');
  });
});
