// A table of malformed and hostile requests. Every one must get a 4xx in OpenAI's error shape naming the problem.
export interface HostileCase {
  name: string;
  path?: string;
  method?: string;
  contentType?: string | null;
  /** Raw body (string or bytes) or a JSON value. */
  body?: string | Uint8Array | Record<string, unknown>;
  status: number | number[];
  /** Text the error message (or param) must contain. */
  mentions?: string;
}

const M = 'model';
const base = { model: M, prompt: 'hello', max_tokens: 4 };
const chatBase = { model: M, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 };

export function hostileCases(limits: { maxN: number; maxStop: number; maxPrompts: number; bodyLimit: number; context: number }): HostileCase[] {
  const cases: HostileCase[] = [];
  const add = (c: HostileCase) => cases.push(c);

  // Bodies that are not JSON objects.
  for (const [name, body] of Object.entries({
    empty: '', space: '   ', truncated: '{"model": "model", "prompt": "hi"', trailingComma: '{"model": "model", "prompt": "hi",}',
    singleQuotes: "{'model': 'model'}", nan: '{"model": "model", "prompt": "hi", "temperature": NaN}',
    infinity: '{"model": "model", "prompt": "hi", "max_tokens": Infinity}', negInfinity: '{"model":"model","prompt":"a","top_p":-Infinity}',
    comment: '{"model": "model" /* c */, "prompt": "hi"}', nullLiteral: 'null', array: '[1, 2, 3]', number: '42', string: '"prompt"',
    boolean: 'true', bareWord: 'hello', twoObjects: '{"model":"model"}{"prompt":"a"}', unquotedKey: '{model: "model"}',
    hexNumber: '{"model":"model","prompt":"a","max_tokens":0x10}', leadingZero: '{"model":"model","prompt":"a","max_tokens":010}',
    controlChar: '{"model":"model","prompt":"a\u0001b"}', loneBrace: '}', xml: '<request><model>m</model></request>',
  })) add({ name: `invalid JSON: ${name}`, body, status: 400 });

  // Bad UTF-8 (overlong, lone continuation, truncated sequence, surrogate half, 0xFF).
  for (const [name, bytes] of Object.entries({ overlong: [0xc0, 0xaf], continuation: [0x80], truncated: [0xe2, 0x82], surrogate: [0xed, 0xa0, 0x80], ff: [0xff] })) {
    add({ name: `bad UTF-8: ${name}`, body: new Uint8Array([...Buffer.from('{"model":"model","prompt":"'), ...bytes, ...Buffer.from('"}')]), status: 400, mentions: 'UTF-8' });
  }

  // Content types.
  for (const ct of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'image/png']) {
    add({ name: `content-type ${ct}`, contentType: ct, body: JSON.stringify(base), status: 415 });
  }
  add({ name: 'no content-type', contentType: null, body: JSON.stringify(base), status: [400, 415] });

  // Required fields.
  add({ name: 'model null', body: { model: null, prompt: 'hi' }, status: 400, mentions: 'model' });
  add({ name: 'missing prompt', body: { model: M }, status: 400, mentions: 'prompt' });
  add({ name: 'empty object', body: {}, status: 400 });
  add({ name: 'chat: missing messages', path: '/v1/chat/completions', body: { model: M }, status: 400, mentions: 'messages' });

  // Wrong types and out-of-range values, field by field.
  const badValues: Record<string, unknown[]> = {
    model: [5, true, null, {}, [], ''],
    prompt: [5, true, null, {}, [], [[]], [1.5], [-1], [10 ** 9], [['a']], [null], '', [{}], [true]],
    max_tokens: ['10', 1.5, -1, 0, true, {}, [], 1e30],
    temperature: ['hot', -0.1, 2.5, 1e308, true, {}, []],
    top_p: ['x', 0, -1, 1.5, true, {}],
    top_k: ['x', 1.5, -2, true, {}],
    min_p: ['x', -0.5, 2, true],
    n: ['2', 0, -1, 1.5, 10 ** 6, true],
    stop: [5, true, {}, [5], [''], [null], [[]]],
    seed: ['42', 1.5, true, {}],
    stream: ['yes', 1, {}, []],
    logprobs: ['x', -1, 21, 1.5, true],
    echo: ['yes', 1, {}],
    user: [5, true, {}],
    speculative: ['no', 1, { num_tokens: -1 }, { num_tokens: 17 }, { num_tokens: 'x' }, { k: 2 }, []],
    stream_options: ['x', 5, { include_usage: 'yes' }, { other: true }],
    presence_penalty: [-3, 2.5, 'x'],
    frequency_penalty: [3, 'x', {}],
    repetition_penalty: [0, -1, 11, 'x'],
    best_of: [2, 0, 'x'],
    logit_bias: [{ 5: 101 }, { '-1': 1 }, { x: 1 }, { 5: 'x' }, { 99999999: 1 }, 'x', 5],
    suffix: ['tail', 5],
  };
  for (const [field, values] of Object.entries(badValues)) {
    for (const v of values) add({ name: `${field} = ${JSON.stringify(v)}`, body: { ...base, [field]: v }, status: [400, 404], mentions: field });
  }
  for (const [field, values] of Object.entries({
    messages: ['hi', [], [{}], [{ role: 'alien', content: 'x' }], [{ role: 'user', content: 5 }], [{ role: 'user', content: [{ type: 'image' }] }], [null], 5],
    max_completion_tokens: [0, -1, 'x', 1e30],
    top_logprobs: [-1, 21, 'x'],
    prediction: ['x', { type: 'other', content: 'x' }, { content: 'x' }, { type: 'content', content: 5 }],
    logprobs: ['x', 1],
  })) {
    for (const v of values) add({ name: `chat ${field} = ${JSON.stringify(v)}`, path: '/v1/chat/completions', body: { ...chatBase, [field]: v }, status: 400, mentions: field });
  }
  add({ name: 'chat top_logprobs without logprobs', path: '/v1/chat/completions', body: { ...chatBase, top_logprobs: 2 }, status: 400, mentions: 'logprobs' });
  add({ name: 'unknown model', body: { ...base, model: 'gpt-4' }, status: 404, mentions: 'model' });
  add({ name: 'chat unknown model', path: '/v1/chat/completions', body: { ...chatBase, model: 'x' }, status: 404, mentions: 'model' });

  // Unknown fields.
  for (const field of ['foo', 'prompts', 'max_token', 'temprature', '__proto__x', 'constructor', 'functions', 'tools', 'response_formatx', 'Model']) {
    add({ name: `unknown field ${field}`, body: { ...base, [field]: 1 }, status: 400, mentions: field });
  }
  add({ name: 'proto pollution key', body: '{"model":"model","prompt":"a","__proto__":{"admin":true}}', status: 400 });

  // Limits.
  add({ name: `n above max (${limits.maxN + 1})`, body: { ...base, n: limits.maxN + 1 }, status: 400, mentions: 'n' });
  add({ name: 'stop list of 1000 strings', body: { ...base, stop: Array.from({ length: 1000 }, (_, i) => `s${i}`) }, status: 400, mentions: 'stop' });
  add({ name: `stop list above max (${limits.maxStop + 1})`, body: { ...base, stop: Array.from({ length: limits.maxStop + 1 }, (_, i) => `s${i}`) }, status: 400, mentions: 'stop' });
  add({ name: 'prompt array of 10k strings', body: { ...base, prompt: Array.from({ length: 10_000 }, () => 'a') }, status: 400, mentions: 'prompt' });
  add({ name: `prompt array above max (${limits.maxPrompts + 1})`, body: { ...base, prompt: Array.from({ length: limits.maxPrompts + 1 }, () => 'a') }, status: 400, mentions: 'prompt' });
  add({ name: 'prompt of 10k token ids (beyond the context)', body: { ...base, prompt: Array.from({ length: 10_000 }, () => 5) }, status: 400, mentions: 'context length' });
  add({ name: 'long text prompt beyond the context', body: { ...base, prompt: 'word '.repeat(limits.context * 2) }, status: 400, mentions: 'context length' });
  add({ name: 'max_tokens beyond the context', body: { ...base, max_tokens: limits.context * 4 }, status: 400, mentions: 'max_tokens' });
  add({ name: 'gigantic prompt (over the body limit)', body: { ...base, prompt: 'x'.repeat(limits.bodyLimit + 10) }, status: 413 });
  add({ name: 'gigantic token-id prompt (over the body limit)', body: { ...base, prompt: Array.from({ length: limits.bodyLimit / 2 }, () => 7) }, status: 413 });
  add({ name: 'empty token-id prompt', body: { ...base, prompt: [] }, status: 400, mentions: 'prompt' });
  add({ name: 'token ids out of vocabulary (negative, huge, float)', body: { ...base, prompt: [1, 2, 512] }, status: 400, mentions: 'vocabulary' });

  // Deep nesting.
  const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
  add({ name: 'deeply nested prompt (100k levels)', body: `{"model":"model","prompt":${deep(100_000)}}`, status: 400 });
  add({ name: 'deeply nested unknown field (10k levels)', body: `{"model":"model","prompt":"a","x":${deep(10_000)}}`, status: 400 });
  add({ name: 'deeply nested objects (20k levels)', body: `{"model":"model","prompt":"a","stop":${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`, status: 400 });

  // Routes and methods.
  for (const [method, path] of [['GET', '/v1/completions'], ['PUT', '/v1/completions'], ['DELETE', '/v1/chat/completions'], ['POST', '/v1/embeddings'],
    ['POST', '/v2/completions'], ['GET', '/v1/models/../../etc/passwd'], ['POST', '/v1/completions/extra'], ['GET', '/%00']]) {
    add({ name: `${method} ${path}`, method, path, body: method === 'GET' || method === 'DELETE' ? undefined : base, status: [400, 404, 405] });
  }
  // Schemas nested beyond the limit, under the body limit (a recursive compiler would exhaust its stack: 500). Written
  // as text: JSON.stringify itself would run out of stack on the deepest.
  const nested = (levels: number, leaf: string) => {
    let open = '';
    let close = '';
    for (let i = 0; i < levels; i++) {
      open += i % 2 ? '{"type":"array","items":' : '{"type":"object","properties":{"a":';
      close = (i % 2 ? '}' : '}}') + close;
    }
    return open + leaf + close;
  };
  const withField = (body: Record<string, unknown>, field: string, json: string) => `${JSON.stringify(body).slice(0, -1)},"${field}":${json}}`;
  for (const levels of [33, 1000, 5000]) {
    add({ name: `guided_json nested ${levels} levels`, body: withField(base, 'guided_json', nested(levels, '{"type":"string"}')), status: 400, mentions: 'at most 32 levels' });
    add({ name: `guided_json string nested ${levels} levels`, body: withField(base, 'guided_json', JSON.stringify(nested(levels, '{"type":"null"}'))),
      status: 400, mentions: 'at most 32 levels' });
    add({ name: `json_schema nested ${levels} levels`, path: '/v1/chat/completions', status: 400, mentions: 'at most 32 levels',
      body: withField(chatBase, 'response_format', `{"type":"json_schema","json_schema":{"name":"x","schema":${nested(levels, '{"type":"integer"}')}}}`) });
  }
  return cases;
}
