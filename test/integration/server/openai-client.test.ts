// The official openai client against the real server (stories260K target, distilled draft, real ONNX Runtime).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('server with the openai client');

describe('OpenAI API through the official client', () => {
  let server: TestServer;
  let client: OpenAI;
  const model = 'stories260K';
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), numSpeculativeTokens: 4 });
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  });
  afterAll(() => server.close());

  it('lists the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([model]);
  });

  it('completes greedily with the oracle text, finish_reason length and usage', async () => {
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 20, temperature: 0 });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0].text).toMatch(/^, there was a little girl named Lily\. She loved to play/);
    expect(r.choices[0].finish_reason).toBe('length');
    expect(r.usage).toMatchObject({ prompt_tokens: 5, completion_tokens: 20, total_tokens: 25 });
    // No Predicted Output: none of its tokens (OpenAI's meaning); the draft's own figures are in the extension.
    expect((r.usage as any).completion_tokens_details).toEqual({ accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 });
    expect((r.usage as any).speculative_decoding.accepted_draft_tokens).toBeGreaterThan(0); // the draft proposed and was accepted
  });

  it('streams chunks whose concatenation equals the non-streamed text for the same seed', async () => {
    for (const temperature of [0, 0.9]) {
      const params = { model, prompt: 'The little dog', max_tokens: 40, temperature, seed: 42 };
      const plain = await client.completions.create(params);
      const stream = await client.completions.create({ ...params, stream: true, stream_options: { include_usage: true } });
      let text = '';
      let finish: string | null = null;
      let usage: unknown = null;
      for await (const chunk of stream) {
        if (chunk.choices[0]) {
          text += chunk.choices[0].text;
          finish = chunk.choices[0].finish_reason ?? finish;
        }
        if (chunk.usage) usage = chunk.usage;
      }
      expect(text).toBe(plain.choices[0].text);
      expect(finish).toBe(plain.choices[0].finish_reason);
      expect(usage).toMatchObject({ completion_tokens: plain.usage!.completion_tokens });
    }
  });

  it('the same seed reproduces sampled text; n=2 gives two different choices', async () => {
    const params = { model, prompt: 'Tom and Sue', max_tokens: 30, temperature: 1, seed: 7 };
    const a = await client.completions.create(params);
    const b = await client.completions.create(params);
    expect(b.choices[0].text).toBe(a.choices[0].text);
    const two = await client.completions.create({ ...params, n: 2 });
    expect(two.choices.map((c) => c.index)).toEqual([0, 1]);
    expect(two.choices[0].text).toBe(a.choices[0].text);
    expect(two.choices[1].text).not.toBe(two.choices[0].text);
  });

  it('stops at a stop string, which is not included', async () => {
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 50, temperature: 0, stop: ['Lily'] });
    expect(r.choices[0].text).toBe(', there was a little girl named ');
    expect(r.choices[0].finish_reason).toBe('stop');
  });

  it('returns logprobs of the chosen tokens and the top alternatives', async () => {
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 5, temperature: 0, logprobs: 3 });
    const lp = r.choices[0].logprobs!;
    expect(lp.tokens).toHaveLength(5);
    expect(lp.tokens!.join('')).toBe(r.choices[0].text);
    expect(lp.token_logprobs!.every((v) => v! <= 0)).toBe(true);
    lp.top_logprobs!.forEach((top, i) => {
      expect(Object.keys(top!)).toHaveLength(3);
      expect(Math.max(...Object.values(top!))).toBeCloseTo(lp.token_logprobs![i]!, 5); // greedy picks the best
    });
    expect(lp.text_offset).toEqual(lp.tokens!.map((_, i) => lp.tokens!.slice(0, i).join('').length));
  });

  it('accepts token-id prompts and arrays of prompts, with echo', async () => {
    const ids = await client.completions.create({ model, prompt: [[1, 403, 407, 261, 378], [1, 403]], max_tokens: 6, temperature: 0, echo: true });
    const texts = await client.completions.create({ model, prompt: ['Once upon a time', 'Once'], max_tokens: 6, temperature: 0, echo: true });
    expect(ids.choices).toHaveLength(2);
    expect(ids.choices.map((c) => c.text)).toEqual(texts.choices.map((c) => c.text));
    expect(texts.choices[0].text.startsWith('Once upon a time, there')).toBe(true);
    expect(texts.usage!.prompt_tokens).toBe(5 + 2);
  });

  it('chat completes, plain and streamed, with the fallback template', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story.' }];
    const plain = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0 });
    expect(plain.object).toBe('chat.completion');
    expect(plain.choices[0].message.role).toBe('assistant');
    expect(plain.choices[0].message.content!.length).toBeGreaterThan(0);
    const stream = await client.chat.completions.create({ model, messages, max_tokens: 20, temperature: 0, stream: true });
    let text = '';
    let role = '';
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      role ||= chunk.choices[0]?.delta.role ?? '';
    }
    expect(role).toBe('assistant');
    expect(text).toBe(plain.choices[0].message.content);
  });

  it('chat with a Predicted Output accepts prediction tokens and keeps the greedy text', async () => {
    const messages = [{ role: 'user' as const, content: 'Once upon a time' }];
    const base = await client.chat.completions.create({ model, messages, max_tokens: 40, temperature: 0, speculative: false } as any);
    const text = base.choices[0].message.content!;
    const predicted = await client.chat.completions.create({
      model, messages, max_tokens: 40, temperature: 0, prediction: { type: 'content', content: text },
    });
    expect(predicted.choices[0].message.content).toBe(text);
    // Every completion token followed the prediction (the text re-tokenized may differ from the generated tokens by a
    // merge, which then counts as rejected).
    const details = predicted.usage!.completion_tokens_details!;
    expect(details.accepted_prediction_tokens).toBe(predicted.usage!.completion_tokens);
    expect(details.rejected_prediction_tokens).toBeLessThanOrEqual(2);
    expect(base.usage!.completion_tokens_details!.accepted_prediction_tokens).toBe(0);
  });
});
