// Structured output through the HTTP API (a real server on a tiny model with an early-exit draft): response_format and
// vLLM's guided_json, guided_regex, guided_choice and guided_grammar, and XGrammar's refusals as 400s.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import OpenAI from 'openai';
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
    else expect(content).toMatch(/^[{[]/); // XGrammar's builtin JSON grammar: an object or an array
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

  it('pattern, oneOf, $ref/$defs and minimum/maximum are followed (ajv validates)', async () => {
    const rich = {
      type: 'object', additionalProperties: false, required: ['code', 'size', 'at'],
      properties: {
        code: { type: 'string', pattern: '^[A-Z]{2}-[0-9]{3}$' },
        size: { oneOf: [{ type: 'integer', minimum: 10, maximum: 20 }, { enum: ['small', 'large'] }] },
        at: { $ref: '#/$defs/point' },
      },
      $defs: { point: { type: 'object', additionalProperties: false, required: ['x'], properties: { x: { type: 'integer', minimum: -3, maximum: 3 } } } },
    };
    for (const temperature of [0, 0.9]) {
      for (const seed of [1, 2, 3]) {
        const r = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', max_tokens: 200, temperature, seed,
          response_format: { type: 'json_schema', json_schema: { name: 'rich', schema: rich } } });
        expect(r.json.choices[0].finish_reason).toBe('stop');
        const value = JSON.parse(r.json.choices[0].text);
        expect(ajv.validate(rich, value), `${r.json.choices[0].text} ${JSON.stringify(ajv.errors)}`).toBe(true);
      }
    }
  });

  it('guided_regex, guided_choice and guided_grammar through the openai SDK, speculative equal to plain', async () => {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const ask = async (extra: Record<string, unknown>, speculative: boolean) => (await client.completions.create(
      { model: 'model', prompt: 'a b', max_tokens: 40, temperature: 0, speculative, ...extra } as any)).choices[0];
    const cases: [Record<string, unknown>, (t: string) => boolean][] = [
      [{ guided_regex: '(cat|dog)s? [0-9]{2,4}' }, (t) => /^(cat|dog)s? [0-9]{2,4}$/.test(t)],
      [{ guided_choice: ['alpha', 'beta', 'gamma delta'] }, (t) => ['alpha', 'beta', 'gamma delta'].includes(t)],
      [{ guided_grammar: 'root ::= "[" num ("," num)? "]"\nnum ::= [1-9] [0-9]?' }, (t) => /^\[[1-9][0-9]?(,[1-9][0-9]?)?\]$/.test(t)],
    ];
    for (const [extra, inLanguage] of cases) {
      const [spec, plain] = [await ask(extra, true), await ask(extra, false)];
      expect(spec.finish_reason, JSON.stringify(extra)).toBe('stop');
      expect(inLanguage(spec.text), `${JSON.stringify(spec.text)} for ${JSON.stringify(extra)}`).toBe(true);
      expect(spec.text).toBe(plain.text);
    }
    // Streamed chat: the deltas join to a choice.
    const stream = await client.chat.completions.create({ model: 'model', messages: [{ role: 'user', content: 'pick' }], stream: true,
      max_tokens: 20, temperature: 0.8, seed: 4, guided_choice: ['red', 'green'] } as any);
    let text = '';
    for await (const chunk of stream as any) text += chunk.choices[0]?.delta?.content ?? '';
    expect(['red', 'green']).toContain(text);
  });

  it('a grammar XGrammar refuses gets a 400 with its reason, and the server serves on', async () => {
    const bad = async (body: Record<string, unknown>, param: string, words: RegExp) => {
      const r = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', max_tokens: 5, ...body });
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.json.error.type).toBe('invalid_request_error');
      expect(r.json.error.param).toBe(param);
      expect(r.json.error.message).toMatch(words);
    };
    await bad({ response_format: { type: 'json_schema', json_schema: { name: 'n', schema: { type: 'strin' } } } }, 'response_format', /strin/);
    await bad({ guided_json: { $ref: '#/$defs/missing' } }, 'guided_json', /\$defs/);
    await bad({ guided_regex: '[0-9' }, 'guided_regex', /Unclosed|\[/);
    await bad({ guided_grammar: 'root ::= "a" | ' }, 'guided_grammar', /EBNF|Expect/);
    await bad({ guided_choice: [] }, 'guided_choice', /guided_choice/);
    await bad({ guided_regex: 'a', guided_choice: ['a'] }, 'guided_choice', /at most one/);
    await bad({ guided_json: '{not json' }, 'guided_json', /not valid JSON/);
    const wrongType = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', response_format: { type: 'xml' } });
    expect(wrongType.status).toBe(400);
    expect(wrongType.json.error.param).toBe('response_format');
    // After refusals, grammars still compile and constrain.
    const ok = await post(`${url}/v1/completions`, { model: 'model', prompt: 'x', max_tokens: 300, temperature: 0, guided_json: schema });
    expect(ajv.validate(schema, JSON.parse(ok.json.choices[0].text))).toBe(true);
  });
});
