// Chunked prefill on a real model: a long prompt that arrives while others decode goes in over several steps (the
// running streams get a token every step meanwhile), and every output equals the target's own greedy text.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { generate } from '../../helpers/plain-generation.ts';

describe('chunked prefill', () => {
  let target: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = tinyModel({ seed: 12, maxPositionEmbeddings: 512 });
    target = await Decoder.open(dir);
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(() => target.close());

  it('a long prompt joins in chunks while streams decode; all outputs exact', async () => {
    const prefills: number[] = [];
    let steps = 0;
    const engine = new Engine({ target, tokenizer, proposer: new NgramProposer(), numSpeculativeTokens: 3, maxBatch: 8, maxQueue: 16,
      prefillChunkTokens: 8, prefixCacheBytes: 0, hooks: { onStep: () => steps++, onForward: (p) => p === 'prefill' && prefills.push(steps) } });
    const short: GenerationRequest = { promptIds: [1, 5, 6, 7], maxTokens: 60, sampling: GREEDY, stop: [], ignoreEos: true };
    const long: GenerationRequest = { promptIds: [1, ...Array.from({ length: 90 }, (_, i) => 3 + ((i * 7) % 200))], maxTokens: 20, sampling: GREEDY, stop: [], ignoreEos: true };
    // The long prompt arrives from the short one's first token event: while it decodes, whatever the timing.
    let longRun: Promise<Awaited<ReturnType<typeof collect>>> | null = null;
    const shortRun = new Promise<number[]>((resolve, reject) => {
      engine.submit(short, (e) => {
        if (e.type === 'token' && !longRun) longRun = collect(engine, long);
        if (e.type === 'done') resolve(e.tokens);
        if (e.type === 'error') reject(e.error);
      });
    });
    const [shortTokens, longOut] = [await shortRun, await longRun!];
    await engine.close();
    const oracle = async (r: GenerationRequest) => (await generate(target, tokenizer, r.promptIds, { maxTokens: r.maxTokens, sampling: GREEDY })).tokens;
    expect(shortTokens).toEqual(await oracle(short));
    expect(longOut.tokens).toEqual(await oracle(long));
    // 90 prompt tokens in chunks of 8 took 12 prefill passes (after the short prompt's own).
    expect(prefills.length).toBe(1 + Math.ceil(91 / 8));
  });
});
