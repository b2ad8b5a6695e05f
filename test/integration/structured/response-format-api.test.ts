// response_format and guided_json through the HTTP API (real server, stories260K + draft, or a tiny model).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';

const schema = {
  type: 'object', additionalProperties: false, required: ['name', 'age', 'pets'],
  properties: { name: { type: 'string', maxLength: 8 }, age: { type: 'integer' }, pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 2 } },
};

describe('response_format over HTTP', () => {
  let server: TestServer;
  let url: string;
  const ajv = new Ajv();
  beforeAll(async () => {
    const target = tinyModel({ seed: 8, numLayers: 3, maxPositionEmbeddings: 1024 });
    server = await startServer({ target, draft: earlyExitDraft(target, 1), numSpeculativeTokens: 3 });
    url = server.url;
  });
  afterAll(() => server.close());

  const jsonSchema = { type: 'json_schema', json_schema: { name: 'person', schema, strict: true } };

  it('completions with json_schema: the text parses and validates; speculative equals plain', async () => {
    const ask = (speculative: boolean) => post(`${url}/v1/completions`, { model: 'model', prompt: 'a b', max_tokens: 300, temperature: 0, response_format: jsonSchema, speculative });
    const [spec, plain] = await Promise.all([ask(true), ask(false)]);
    expect(spec.json.choices[0].finish_reason).toBe('stop');
    expect(ajv.validate(schema, JSON.parse(spec.json.choices[0].text))).toBe(true);
    expect(spec.json.choices[0].text).toBe(plain.json.choices[0].text);
  });

  it('chat with json_object, plain and streamed alike (sampled, seeded)', async () => {
    const body = { model: 'model', messages: [{ role: 'user', content: 'json' }], max_tokens: 400, temperature: 0.7, seed: 5, response_format: { type: 'json_object' } };
    const plain = await post(`${url}/v1/chat/completions`, body);
    const content = plain.json.choices[0].message.content;
    if (plain.json.choices[0].finish_reason === 'stop') expect(typeof JSON.parse(content)).toBe('object');
    else expect(content.trimStart().startsWith('{')).toBe(true);
    const r = await fetch(`${url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
    const text = (await r.text()).split('\n').filter((l) => l.startsWith('data: {')).map((l) => JSON.parse(l.slice(6)).choices[0]?.delta?.content ?? '').join('');
    expect(text).toBe(content);
  });

  it('guided_json (vLLM) as an object or a string', async () => {
    for (const guided of [schema, JSON.stringify(schema)]) {
      const r = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', max_tokens: 300, temperature: 0, guided_json: guided });
      expect(ajv.validate(schema, JSON.parse(r.json.choices[0].text))).toBe(true);
    }
  });

  it('finish_reason length when max_tokens cuts the document', async () => {
    const r = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', max_tokens: 4, temperature: 0, response_format: jsonSchema });
    expect(r.json.choices[0].finish_reason).toBe('length');
    expect(() => JSON.parse(r.json.choices[0].text)).toThrow();
  });

  it('unsupported schema features get a 400 that names them', async () => {
    const bad = (s: unknown) => post(`${url}/v1/completions`, { model: 'model', prompt: 'x', response_format: { type: 'json_schema', json_schema: { name: 'n', schema: s } } });
    for (const [s, word] of [[{ type: 'string', pattern: '^a' }, 'pattern'], [{ oneOf: [] }, 'oneOf'], [{ type: 'object', properties: { a: { format: 'email', type: 'string' } } }, 'format']] as const) {
      const r = await bad(s);
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('unsupported_parameter');
      expect(r.json.error.param).toBe('response_format');
      expect(r.json.error.message).toContain(`"${word}"`);
    }
    const r = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', guided_json: '{not json' });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('guided_json');
    const wrongType = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', response_format: { type: 'xml' } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error.param).toBe('response_format');
  });
});
