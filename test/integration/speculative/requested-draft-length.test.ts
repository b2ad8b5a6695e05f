// A request's `speculative.num_tokens`: at most the server's maximum (a 400 names it; the engine clamps), and exact at
// any load, as documented, where the load rule turns speculation off for the server's own choice.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { earlyExitDraft, tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';

describe('requested draft lengths', () => {
  let dir: string;
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    dir = tinyModel({ seed: 11, numLayers: 3 });
    target = await Decoder.open(dir);
    draft = await Decoder.open(earlyExitDraft(dir, 1));
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(async () => {
    await draft.close();
    await target.close();
  });

  const request = (promptIds: number[], extra: Partial<GenerationRequest> = {}): GenerationRequest =>
    ({ promptIds, maxTokens: 30, sampling: GREEDY, stop: [], ignoreEos: true, ...extra });

  it('are clamped to the engine\'s maximum (no graph is built for a larger one)', async () => {
    const drafted: number[] = [];
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 3,
      adaptiveDraftLength: false, maxBatch: 8, maxQueue: 16, hooks: { onVerify: (d) => drafted.push(d) } });
    await collect(engine, request([1, 5, 6], { numSpeculativeTokens: 9 }));
    expect(Math.max(...drafted)).toBe(3);
    await engine.close();
  });

  it('apply at any load: the named length is drafted where the load rule stops the server\'s own choice', async () => {
    const passes: { phase: string; batch: number }[] = [];
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 4,
      disableSpeculationAtBatch: 2, maxBatch: 8, maxQueue: 16, hooks: { onForward: (phase, _s, batch) => passes.push({ phase, batch }) } });
    engine.pause(); // both run together, so the load rule (2 requests) applies from the first step
    const fixed = collect(engine, request([1, 5, 6, 5, 6], { numSpeculativeTokens: 2 }));
    const chosen = collect(engine, request([1, 9, 8], { maxTokens: 60 }));
    engine.resume();
    const [a] = await Promise.all([fixed, chosen]);
    // While both ran, the one that named its length drafted (draft passes of one row, verify passes of both); the
    // other, the server's choice, did not.
    expect(passes.filter((p) => p.phase === 'verify' && p.batch === 2).length).toBeGreaterThan(3);
    expect(passes.filter((p) => p.phase === 'draft' && p.batch === 2)).toEqual([]);
    expect(a.numDrafted).toBeGreaterThan(0);
    await engine.close();
  });
});

describe('over HTTP', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ seed: 2 }), draft: 'ngram', numSpeculativeTokens: 4, servedModelName: 'model' });
  });
  afterAll(() => server.close());

  it('refuses speculative.num_tokens above --num-speculative-tokens with a 400 that names the limit', async () => {
    const r = await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'a', max_tokens: 4, speculative: { num_tokens: 5 } });
    expect(r.status).toBe(400);
    expect(r.json.error).toMatchObject({ param: 'speculative', type: 'invalid_request_error' });
    expect(r.json.error.message).toMatch(/must be at most 4 \(the server's --num-speculative-tokens\), got 5/);
    const ok = await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'a', max_tokens: 4, speculative: { num_tokens: 4 } });
    expect(ok.status).toBe(200);
  });
});
