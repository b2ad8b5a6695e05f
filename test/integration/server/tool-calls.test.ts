// Tool calling through the openai SDK on stories260K + draft (its fallback chat template: Hermes-style calls):
// required and named calls are guaranteed by the grammar and validate against the function's schema, greedy and
// sampled, whole and streamed; `auto` reads what the model wrote; a tool result turn renders and answers.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { Ajv } from 'ajv';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('tool calling on stories260K');

// Short: stories260K's context is 512 tokens of a 512-piece vocabulary, and the fallback template lists the tools.
const weather = {
  type: 'function' as const,
  function: { name: 'weather', parameters: { type: 'object', required: ['city', 'unit'], properties: { city: { type: 'string', maxLength: 6 }, unit: { enum: ['c', 'f'] } } } },
};
const time = {
  type: 'function' as const,
  function: { name: 'time', parameters: { type: 'object', required: ['zone'], properties: { zone: { type: 'integer', minimum: -12, maximum: 14 } } } },
};

describe('tool calling (openai SDK, stories260K + draft)', () => {
  let server: TestServer;
  let client: OpenAI;
  let model: string;
  const ajv = new Ajv();
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), numSpeculativeTokens: 4 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    model = server.served.name;
  });
  afterAll(() => server.close());

  const messages = [{ role: 'user' as const, content: 'Weather in Paris?' }];

  it('required: a call whose arguments validate, at temperature 0 and 0.8, speculative equal to plain when greedy', async () => {
    for (const temperature of [0, 0.8]) {
      for (const seed of [1, 2, 3]) {
        // One call (parallel_tool_calls false): the reply ends after it; with parallel calls a small model may go on.
        const r = await client.chat.completions.create({ model, messages, tools: [weather, time], tool_choice: 'required', parallel_tool_calls: false, max_tokens: 100, temperature, seed });
        const choice = r.choices[0];
        expect(choice.finish_reason, JSON.stringify(choice)).toBe('tool_calls');
        const calls = choice.message.tool_calls!;
        expect(calls.length).toBe(1);
        for (const call of calls) {
          expect(call.type).toBe('function');
          expect(call.id).toMatch(/^call_[A-Za-z0-9]{24}$/);
          const fn = (call as { function: { name: string; arguments: string } }).function;
          const tool = [weather, time].find((t) => t.function.name === fn.name)!;
          expect(tool, fn.name).toBeDefined();
          expect(ajv.validate(tool.function.parameters, JSON.parse(fn.arguments)), fn.arguments).toBe(true);
        }
      }
    }
    const greedy = (speculative: boolean) => client.chat.completions.create({ model, messages, tools: [weather], tool_choice: 'required', max_tokens: 120, temperature: 0, speculative } as any);
    const [spec, plain] = await Promise.all([greedy(true), greedy(false)]);
    expect((spec.choices[0].message.tool_calls![0] as any).function).toEqual((plain.choices[0].message.tool_calls![0] as any).function);
  });

  it('parallel calls: every complete call validates', async () => {
    const r = await client.chat.completions.create({ model, messages, tools: [weather, time], tool_choice: 'required', max_tokens: 110, temperature: 0.9, seed: 4 });
    const calls = r.choices[0].message.tool_calls ?? [];
    expect(calls.length).toBeGreaterThan(0);
    for (const call of calls as any[]) {
      const tool = [weather, time].find((t) => t.function.name === call.function.name)!;
      expect(ajv.validate(tool.function.parameters, JSON.parse(call.function.arguments))).toBe(true);
    }
  });

  it('a named function is the one called, and streams as OpenAI does: id, type and name first, then the arguments', async () => {
    const named = { type: 'function' as const, function: { name: 'time' } };
    const whole = await client.chat.completions.create({ model, messages, tools: [weather, time], tool_choice: named, max_tokens: 80, temperature: 0.8, seed: 9 });
    expect(whole.choices[0].message.tool_calls!.map((c) => (c as any).function.name)).toEqual(['time']);
    const stream = await client.chat.completions.create({ model, messages, tools: [weather, time], tool_choice: named, max_tokens: 80, temperature: 0.8, seed: 9, stream: true });
    const deltas: any[] = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta?.tool_calls) deltas.push(...chunk.choices[0].delta.tool_calls);
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(deltas[0]).toMatchObject({ index: 0, type: 'function', function: { name: 'time', arguments: '' } });
    expect(deltas[0].id).toBe(deltas[0].id.trim());
    const args = deltas.filter((d) => d.index === 0).map((d) => d.function?.arguments ?? '').join('');
    expect(args).toBe((whole.choices[0].message.tool_calls![0] as any).function.arguments);
    expect(ajv.validate(time.function.parameters, JSON.parse(args))).toBe(true);
    expect(finish).toBe('tool_calls');
  });

  it('auto reads the call the model wrote (here made to write one by a regex), and leaves plain text as content', async () => {
    const written = '<tool_call>\n{"name": "weather", "arguments": {"city": "Paris", "unit": "c"}}\n</tool_call>';
    const escaped = written.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    const called = await client.chat.completions.create({ model, messages, tools: [weather], tool_choice: 'auto', max_tokens: 150, temperature: 0, guided_regex: escaped } as any);
    expect(called.choices[0].finish_reason).toBe('tool_calls');
    expect(called.choices[0].message.content).toBeNull();
    expect((called.choices[0].message.tool_calls![0] as any).function).toEqual({ name: 'weather', arguments: '{"city":"Paris","unit":"c"}' });
    const plain = await client.chat.completions.create({ model, messages, tools: [weather], max_tokens: 12, temperature: 0 });
    expect(plain.choices[0].message.tool_calls).toBeUndefined();
    expect(plain.choices[0].message.content!.length).toBeGreaterThan(0);
  });

  it('a tool result turn: the history with the call and its result renders, and the model answers', async () => {
    const history = [
      ...messages,
      { role: 'assistant' as const, content: null, tool_calls: [{ id: 'call_1', type: 'function' as const, function: { name: 'weather', arguments: '{"city": "Paris", "unit": "c"}' } }] },
      { role: 'tool' as const, tool_call_id: 'call_1', content: '21 degrees and sunny' },
    ];
    const r = await client.chat.completions.create({ model, messages: history, tools: [weather], max_tokens: 16, temperature: 0 });
    expect(r.choices[0].message.content!.length).toBeGreaterThan(0);
    const prompt = server.served.renderChat(history.map((m) => ({ ...m, content: m.content ?? '' })) as any, [weather]);
    expect(prompt).toContain('Assistant: <tool_call>{"name": "weather", "arguments": {"city": "Paris", "unit": "c"}}</tool_call>\nTool: 21 degrees and sunny\n');
    expect(prompt).toContain('{"name": "weather", "parameters": {');
    expect(r.usage!.prompt_tokens).toBeGreaterThan(30);
  });

  it('refuses what cannot be honoured, naming the field', async () => {
    const bad = async (body: Record<string, unknown>, param: string) => {
      const err = await client.chat.completions.create({ model, messages, max_tokens: 5, ...body } as any).then(() => null, (e) => e);
      expect(err?.status, JSON.stringify(body)).toBe(400);
      expect(err.error?.param ?? err.param).toBe(param);
    };
    await bad({ tool_choice: 'required' }, 'tool_choice');
    await bad({ tools: [weather], tool_choice: { type: 'function', function: { name: 'nope' } } }, 'tool_choice');
    await bad({ tools: [weather], tool_choice: 'required', response_format: { type: 'json_object' } }, 'tool_choice');
    await bad({ tools: [weather, weather] }, 'tools');
    await bad({ tools: [{ type: 'function', function: { name: 'x', parameters: { type: 'strin' } } }], tool_choice: 'required' }, 'tools');
  });
});
