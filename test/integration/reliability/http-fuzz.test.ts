// Property-based fuzzing of the HTTP layer (fast-check): generated bodies (known fields with values of any type, unknown
// fields, nesting) on generated paths and methods. Every answer is a 200 or a 4xx in OpenAI's error shape, never a 5xx;
// streams carry no server error; afterwards the server is healthy, serves, and logged no error.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { request } from 'node:http';
import fc from 'fast-check';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

const FIELDS = ['model', 'prompt', 'messages', 'max_tokens', 'max_completion_tokens', 'temperature', 'top_p', 'top_k', 'min_p', 'n',
  'stop', 'seed', 'stream', 'stream_options', 'logprobs', 'top_logprobs', 'echo', 'user', 'prediction', 'speculative',
  'response_format', 'guided_json', 'guided_regex', 'guided_choice', 'guided_grammar', 'structural_tag', 'ignore_eos', 'presence_penalty',
  'frequency_penalty', 'repetition_penalty', 'logit_bias', 'best_of', 'suffix'];

const value = fc.letrec((tie) => ({
  any: fc.oneof({ depthSize: 'small' },
    fc.constant(null), fc.boolean(), fc.integer(), fc.double(), fc.constantFrom(0, 1, -1, 2 ** 31, 2 ** 53, 1e308, -0.0, 0.5),
    fc.string({ maxLength: 12 }), fc.constantFrom('model', 'a b c', '', 'json_object', 'json_schema', 'content', 'user', 'text'),
    fc.array(tie('any'), { maxLength: 4 }), fc.dictionary(fc.constantFrom('type', 'role', 'content', 'name', 'schema', 'num_tokens',
      'json_schema', 'include_usage', 'properties', 'items', 'x'), tie('any'), { maxKeys: 4 })),
})).any;

/** Mostly well-formed requests with a field or two off, and some that are anything at all. */
const extras = fc.oneof(fc.constant({}), fc.constant({}), fc.dictionary(fc.constantFrom(...FIELDS), value, { maxKeys: 2 }));
/** Mostly well-formed requests for the route (a field or two off, or extra), and some that are anything at all. */
const bodyFor = (p: string) => {
  const often = <T>(usual: T) => fc.oneof(fc.constant(usual), fc.constant(usual), value);
  const content: Record<string, fc.Arbitrary<unknown>> = p.includes('chat')
    ? { messages: often([{ role: 'user', content: 'hi' }]) } : { prompt: often('hi') };
  return fc.oneof(
    { weight: 3, arbitrary: fc.record({ model: fc.constant('model'), max_tokens: fc.oneof(fc.integer({ min: 1, max: 4 }), often(2)), ...content },
      { requiredKeys: ['model'] }).chain((base) => extras.map((extra) => ({ ...base, ...extra }))) },
    { weight: 1, arbitrary: fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 5 }) },
  );
};
const path = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('/v1/completions', '/v1/chat/completions') },
  { weight: 1, arbitrary: fc.constantFrom('/v1/models', '/health', '/metrics', '/v1/%63ompletions', '//v1/completions', '/v1/completions/', '/V1/completions',
    '/v1/../v1/completions', '/v2/completions', '/', '/docs/json', '/v1/completions?x=%zz', '/%ff') },
  { weight: 1, arbitrary: fc.stringMatching(/^\/[a-z0-9%./_-]{0,20}$/) },
);

function send(url: string, method: string, p: string, payload: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const data = method === 'GET' ? '' : payload;
    const headers = { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) };
    const req = request({ hostname, port, method, path: p, headers }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

describe('HTTP fuzzing', () => {
  let server: TestServer;
  const logs: { level: number; msg: string }[] = [];
  const rejections: unknown[] = [];
  const onRejection = (r: unknown) => rejections.push(r);
  const statuses = new Map<number, number>();
  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    const stream = new Writable({ write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      cb();
    } });
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: 64 }), draft: 'ngram', servedModelName: 'model', maxN: 2,
      maxTokensPerRequest: 4, maxPrompts: 4, maxStop: 4, engineThread: 'main' }, { level: 'warn', stream });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await server.close();
  });

  it('answers every generated request with a 200 or an OpenAI-shaped 4xx', async () => {
    const requests = fc.tuple(path, fc.constantFrom('POST', 'POST', 'POST', 'POST', 'POST', 'GET', 'PUT', 'DELETE'))
      .chain(([p, method]) => fc.tuple(bodyFor(p), fc.constant(p), fc.constant(method)));
    await fc.assert(fc.asyncProperty(requests, async ([b, p, method]) => {
      const r = await send(server.url, method, p, JSON.stringify(b));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      expect(r.status === 200 || (r.status >= 400 && r.status < 500), `${method} ${p} ${JSON.stringify(b)} -> ${r.status} ${r.text.slice(0, 300)}`).toBe(true);
      if (r.text.startsWith('data: ')) {
        expect(r.text).not.toContain('server_error');
        expect(r.text.trimEnd().endsWith('data: [DONE]')).toBe(true);
      } else if (r.status >= 400) {
        const json = JSON.parse(r.text);
        expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
      }
    }), { numRuns: 1000, seed: 1204 });
    console.log(`[reliability] fuzz: statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(20); // the generator also makes valid requests, which are served
  }, 180_000);

  it('is healthy afterwards, still serves, and logged no error and no unhandled rejection', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    expect((await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'hello', max_tokens: 2 })).status).toBe(200);
    expect(rejections).toEqual([]);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    expect([server.served.engine.numRunning, server.served.engine.numWaiting]).toEqual([0, 0]);
  });
});
