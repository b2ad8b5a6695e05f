// Usage that describes what was returned: completion tokens and accepted drafts after stop strings and max_tokens cut
// the output; Predicted Output figures with OpenAI's meaning (tokens of the prediction); a prediction longer than the
// context refused; and an EOS that ends the output kept out of its token events and logprobs, as out of its text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { storiesModel, storiesDraftModel } from '../../helpers/model-fixtures.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import type { EngineEvent } from '../../../src/speculative/generation-request.ts';

describe('usage', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), servedModelName: 'model', engineThread: 'main' });
  });
  afterAll(() => server.close());
  const completions = (body: Record<string, unknown>) => post(`${server.url}/v1/completions`, { model: 'model', temperature: 0, ...body });
  const chat = (body: Record<string, unknown>) =>
    post(`${server.url}/v1/chat/completions`, { model: 'model', temperature: 0, messages: [{ role: 'user', content: 'Once upon a time' }], ...body });

  it('counts the tokens a stop string kept, and no accepted draft beyond them', async () => {
    const speculative = await completions({ prompt: 'Once upon a time', max_tokens: 40, stop: ['there'] });
    const plain = await completions({ prompt: 'Once upon a time', max_tokens: 40, stop: ['there'], speculative: false });
    expect(speculative.json.choices[0].text).toBe(plain.json.choices[0].text);
    expect(speculative.json.choices[0].finish_reason).toBe('stop');
    expect(speculative.json.usage.completion_tokens).toBe(plain.json.usage.completion_tokens);
    const spec = speculative.json.usage.speculative_decoding;
    expect(spec.accepted_draft_tokens).toBeLessThanOrEqual(speculative.json.usage.completion_tokens);
    expect(spec.draft_tokens).toBeGreaterThanOrEqual(spec.accepted_draft_tokens);
    expect(speculative.json.usage.completion_tokens_details).toEqual({ accepted_prediction_tokens: 0, rejected_prediction_tokens: 0 });
  });

  it('reports prediction tokens that did and did not appear, also when max_tokens or a stop string cuts the output', async () => {
    const greedy = (await chat({ max_tokens: 60, speculative: false })).json.choices[0].message.content as string;
    const predicted = (body: Record<string, unknown>) => chat({ max_tokens: 60, prediction: { type: 'content', content: greedy }, ...body });
    const whole = await predicted({});
    expect(whole.json.choices[0].message.content).toBe(greedy);
    const details = whole.json.usage.completion_tokens_details;
    expect(details.accepted_prediction_tokens).toBe(60);
    // Together, the prediction's length in tokens, whatever cut the output.
    const predictionTokens = details.accepted_prediction_tokens + details.rejected_prediction_tokens;
    expect(predictionTokens).toBeGreaterThanOrEqual(60);
    const cut = await predicted({ max_tokens: 10 });
    expect(cut.json.usage.completion_tokens_details).toEqual({ accepted_prediction_tokens: 10, rejected_prediction_tokens: predictionTokens - 10 });
    const stopped = await predicted({ stop: [greedy.split(' ').slice(4, 6).join(' ')] }); // words from its middle
    const kept = stopped.json.usage.completion_tokens;
    expect(kept).toBeLessThan(60);
    expect(stopped.json.usage.completion_tokens_details).toEqual({ accepted_prediction_tokens: kept, rejected_prediction_tokens: predictionTokens - kept });
  });

  it('refuses a prediction longer than the context window, naming it', async () => {
    const r = await chat({ max_tokens: 4, prediction: { type: 'content', content: 'Lily and Tom went to the park. '.repeat(200) } });
    expect(r.status).toBe(400);
    expect(r.json.error.param).toBe('prediction');
    expect(r.json.error.message).toMatch(/'prediction' has \d+ tokens; at most 512 \(the context window\)/);
  });
});

describe('an output ended by EOS', () => {
  it('keeps the EOS out of its token events and logprobs, as out of its text and usage', async () => {
    // A model whose EOS is the token its greedy text reaches fourth: the output then ends there, by EOS.
    const dir = storiesModel(); // a copy of its own
    const probe = await Decoder.open(dir);
    const tokenizer = TextTokenizer.load(dir);
    const prompt = [1];
    const free = (await generate(probe, tokenizer, prompt, { maxTokens: 12, sampling: GREEDY })).tokens;
    await probe.close();
    const at = free.findIndex((t, i) => i >= 3 && !free.slice(0, i).includes(t));
    expect(at).toBeGreaterThanOrEqual(3);
    writeFileSync(join(dir, 'generation_config.json'), JSON.stringify({ bos_token_id: 1, eos_token_id: free[at] }));
    const target = await Decoder.open(dir);
    const engine = new Engine({ target, tokenizer, proposer: new NgramProposer(), numSpeculativeTokens: 3, maxBatch: 8, maxQueue: 16 });
    const events = await new Promise<EngineEvent[]>((resolve) => {
      const seen: EngineEvent[] = [];
      engine.submit({ promptIds: prompt, maxTokens: 12, sampling: GREEDY, stop: [], logprobs: 1 },
        (e) => (seen.push(e), e.type !== 'token' && resolve(seen)));
    });
    const done = events.at(-1) as Extract<EngineEvent, { type: 'done' }>;
    expect(done.finishReason).toBe('stop');
    expect(done.tokens).toEqual(free.slice(0, at));
    const tokens = events.flatMap((e) => (e.type === 'token' ? e.ids : []));
    const logprobs = events.flatMap((e) => (e.type === 'token' ? e.logprobs ?? [] : []));
    expect(tokens).toEqual(done.tokens);
    expect(logprobs.map((l) => l.id)).toEqual(done.tokens);
    expect(events.map((e) => (e.type === 'token' ? e.text : '')).join('')).toBe(done.text);
    await engine.close();
    await target.close();
  });
});
