// Temperature 0: the speculative path's text equals "speculative": false, over many prompts and under concurrency,
// for the distilled draft and for n-gram lookup.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('speculative vs plain through HTTP');

const PROMPTS = ['Once upon a time', 'Tom was sad because', 'The cat and the dog', 'Lily wanted to', 'One day, the sun',
  'Sam had a red ball.', 'The bird sang', 'Mom and Dad', 'There was a big tree', 'Ben liked to eat', 'The girl smiled and',
  'It was a rainy day.', 'A little fish', 'The king said', 'Max ran to the park', 'She found a box'];

describe('greedy speculative text equals plain text over HTTP', () => {
  const servers: Record<string, TestServer> = {};
  beforeAll(async () => {
    const target = storiesModel();
    // Speculation at any load (the default switches it off from 4 requests), so that batches verify drafts.
    const always = { speculativeDisableByBatchSize: 0, maxBatch: 8 };
    servers.draft = await startServer({ target, draft: storiesDraftModel(), numSpeculativeTokens: 4, ...always });
    servers.ngram = await startServer({ target, draft: 'ngram', numSpeculativeTokens: 3, ...always });
  });
  afterAll(async () => {
    for (const s of Object.values(servers)) await s.close();
  });

  it.each(['draft', 'ngram'])('%s: 16 prompts, all sent at once, speculative and plain interleaved', async (name) => {
    const s = servers[name];
    const ask = (prompt: string, speculative: boolean | { num_tokens: number }) =>
      post(`${s.url}/v1/completions`, { model: 'stories260K', prompt, max_tokens: 48, temperature: 0, speculative });
    // Half the speculative requests leave k to the goodput policy (which may find plain decoding faster on a busy
    // machine, and draft nothing); the other half name it, so that drafts are verified whatever the timing.
    const named = (i: number) => i % 2 === 0;
    const results = await Promise.all(PROMPTS.flatMap((p, i) => [ask(p, named(i) ? { num_tokens: 3 } : true), ask(p, false)]));
    for (let i = 0; i < PROMPTS.length; i++) {
      const [spec, plain] = [results[2 * i], results[2 * i + 1]];
      expect(spec.status).toBe(200);
      expect(plain.status).toBe(200);
      expect(spec.json.choices[0].text).toBe(plain.json.choices[0].text);
      expect(plain.json.usage.speculative_decoding.accepted_draft_tokens).toBe(0);
    }
    const accepted = PROMPTS.reduce((a, _, i) => a + (named(i) ? results[2 * i].json.usage.speculative_decoding.accepted_draft_tokens : 0), 0);
    expect(accepted).toBeGreaterThan(0);
  });
});
