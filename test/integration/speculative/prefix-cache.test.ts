// Automatic prefix caching on stories260K + draft: greedy outputs with the cache on equal those with it off (with
// speculation, for requests that reuse a prompt's prefix and for a chat history that ends in an earlier reply); the
// reused tokens are not prefilled again; over HTTP, usage.prompt_tokens_details.cached_tokens and the Prometheus
// counters report them.
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { storiesDraftModel, storiesModel, useStoriesPair } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { post, startServer } from '../../helpers/test-server.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('prefix caching on stories260K');

describe('prefix caching', () => {
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  useStoriesPair((pair) => ({ target, draft, tokenizer } = pair));

  const SYSTEM = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sun with her dog. ';
  const engine = (prefixCacheBytes: number) => {
    const prefills: number[] = [];
    const e = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 4, maxBatch: 16, maxQueue: 100,
      prefixCacheBytes, hooks: { onForward: (phase, _s, batch) => phase === 'prefill' && prefills.push(batch) } });
    return { e, prefills };
  };
  const request = (text: string): GenerationRequest => ({ promptIds: tokenizer.encode(text), maxTokens: 40, sampling: GREEDY, stop: [], ignoreEos: true });

  it('greedy outputs are the same with the cache on and off; later requests reuse the shared prefix and an earlier reply', async () => {
    const on = engine(64 * 1024 * 1024);
    const off = engine(0);
    const first = await collect(on.e, request(`${SYSTEM}One day`));
    const firstOff = await collect(off.e, request(`${SYSTEM}One day`));
    expect(first.tokens).toEqual(firstOff.tokens);
    // The same system prompt, other endings, one after another and then together.
    for (const ending of ['Tom said', 'The dog ran', 'She saw a bird']) {
      const [a, b] = [await collect(on.e, request(SYSTEM + ending)), await collect(off.e, request(SYSTEM + ending))];
      expect(a.tokens, ending).toEqual(b.tokens);
    }
    const together = ['A', 'B', 'C'].map((x) => request(`${SYSTEM}${x} friend`));
    const [ons, offs] = [await Promise.all(together.map((r) => collect(on.e, r))), await Promise.all(together.map((r) => collect(off.e, r)))];
    expect(ons.map((r) => r.tokens)).toEqual(offs.map((r) => r.tokens));
    // A follow-up whose prompt is the first prompt, its reply and more: the reply's KV is reused too.
    const followText = tokenizer.decode([...tokenizer.encode(`${SYSTEM}One day`, false), ...first.tokens]) + ' Then';
    const stats = (r: Awaited<ReturnType<typeof collect>>) => (r.events.at(-1) as { stats: { numCachedTokens: number } }).stats;
    const [follow, followOff] = [await collect(on.e, request(followText)), await collect(off.e, request(followText))];
    expect(follow.tokens).toEqual(followOff.tokens);
    expect(stats(follow).numCachedTokens).toBeGreaterThan(tokenizer.encode(SYSTEM).length);
    expect(stats(ons[0]).numCachedTokens).toBeGreaterThanOrEqual(tokenizer.encode(SYSTEM).length - 2);
    expect(stats(followOff).numCachedTokens).toBe(0);
    await on.e.close();
    await off.e.close();
  });

  it('over HTTP: cached_tokens on a repeated long system prompt, and the Prometheus counters', async () => {
    const server = await startServer({ target: storiesModel(), draft: storiesDraftModel() });
    try {
      const ask = (q: string) => post(`${server.url}/v1/chat/completions`, {
        messages: [{ role: 'system', content: SYSTEM.repeat(2) }, { role: 'user', content: q }], max_tokens: 8, temperature: 0,
      });
      const one = await ask('Who is Lily?');
      const two = await ask('Where is the dog?');
      expect(one.json.usage.prompt_tokens_details.cached_tokens).toBe(0);
      expect(two.json.usage.prompt_tokens_details.cached_tokens).toBeGreaterThan(50);
      expect(two.json.usage.prompt_tokens_details.cached_tokens).toBeLessThan(two.json.usage.prompt_tokens);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      const value = (name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(metrics)?.[1]);
      expect(value('specserve_prefix_cache_queries_total')).toBe(one.json.usage.prompt_tokens + two.json.usage.prompt_tokens);
      expect(value('specserve_prefix_cache_hits_total')).toBe(two.json.usage.prompt_tokens_details.cached_tokens);
    } finally {
      await server.close();
    }
  });
});
