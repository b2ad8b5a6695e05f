// Faults inside the engine's step, outside its passes (a constraint's or a proposer's own code): the request whose
// bookkeeping failed gets an error, every other request of the batch finishes as the target alone would, and the
// engine serves on. Injected through test-only constraints and proposers on the real engine and model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { RuleConstraint, ruleConstraints } from '../../helpers/fake-constraint.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import type { Proposer } from '../../../src/speculative/proposer.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';

/** Allows every token; its commit throws once `failAfter` tokens were taken. */
function faultyConstraint(vocab: number, failAfter: number): RuleConstraint {
  return new RuleConstraint(vocab, () => true, (n) => {
    if (n >= failAfter) throw new Error(`injected constraint fault after ${n} tokens`);
  });
}

/** An n-gram proposer whose accept throws for sequences whose prompt starts with `marker`. */
function faultyProposer(marker: number): Proposer {
  const ngram = new NgramProposer();
  return {
    name: 'faulty',
    begin: () => ngram.begin(),
    propose: (requests) => ngram.propose(requests),
    accept: (seq) => {
      if (seq.tokens[0] === marker && seq.tokens.length > seq.numPromptTokens + 2) throw new Error('injected proposer fault');
      ngram.accept();
    },
    end: () => ngram.end(),
  };
}

describe('fault isolation inside a step', () => {
  let target: Decoder;
  let tokenizer: TextTokenizer;
  beforeAll(async () => {
    const dir = tinyModel({ seed: 8 });
    target = await Decoder.open(dir);
    tokenizer = TextTokenizer.load(dir);
  });
  afterAll(() => target.close());

  const request = (promptIds: number[], extra: Partial<GenerationRequest> = {}): GenerationRequest =>
    ({ promptIds, maxTokens: 24, sampling: GREEDY, stop: [], ignoreEos: true, ...extra });
  const oracle = async (r: GenerationRequest) => (await generate(target, tokenizer, r.promptIds, { maxTokens: r.maxTokens, sampling: GREEDY })).tokens;

  it('a constraint that throws fails its request only; its batch-mates finish exactly and the engine serves on', async () => {
    const engine = new Engine({ target, tokenizer, proposer: new NgramProposer(), numSpeculativeTokens: 3, maxBatch: 8, maxQueue: 16,
      constraints: ruleConstraints((spec) => faultyConstraint(target.vocabSize, (spec as { schema: { failAfter: number } }).schema.failAfter)) });
    const healthy = [request([1, 5, 6, 5, 6, 5, 6]), request([1, 9, 10, 11])];
    engine.pause(); // all three start in one batch
    const results = [
      collect(engine, request([1, 20, 21], { constraint: { type: 'json', schema: { failAfter: 4 } } })),
      ...healthy.map((r) => collect(engine, r)),
    ];
    engine.resume();
    const [faulty, ...rest] = await Promise.allSettled(results);
    expect(faulty.status).toBe('rejected');
    expect((faulty as PromiseRejectedResult).reason.message).toMatch(/injected constraint fault after [4-9] tokens/);
    expect(rest.map((r) => (r as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens)).toEqual(await Promise.all(healthy.map(oracle)));
    // A faulting constraint at its very first token (in the prefill step) fails only its request too.
    const early = await Promise.allSettled([collect(engine, request([1, 2], { constraint: { type: 'json', schema: { failAfter: 1 } } })),
      collect(engine, healthy[1])]);
    expect(early.map((r) => r.status)).toEqual(['rejected', 'fulfilled']);
    expect((await collect(engine, healthy[0])).tokens).toEqual(await oracle(healthy[0]));
    expect([engine.numRunning, engine.numWaiting, engine.kvBytes]).toEqual([0, 0, 0]);
    await engine.close();
  });

  it('a proposer that throws in its bookkeeping fails that request only', async () => {
    const engine = new Engine({ target, tokenizer, proposer: faultyProposer(7), numSpeculativeTokens: 3, maxBatch: 8, maxQueue: 16 });
    const healthy = request([1, 5, 6, 5, 6, 5, 6]);
    engine.pause();
    const settled = Promise.allSettled([collect(engine, request([7, 8, 9])), collect(engine, healthy)]);
    engine.resume();
    const [faulty, ok] = await settled;
    expect(faulty.status).toBe('rejected');
    expect((faulty as PromiseRejectedResult).reason.message).toBe('injected proposer fault');
    expect((ok as PromiseFulfilledResult<{ tokens: number[] }>).value.tokens).toEqual(await oracle(healthy));
    expect((await collect(engine, healthy)).tokens).toEqual(await oracle(healthy));
    await engine.close();
  });

  it('a listener that throws harms no other request', async () => {
    const engine = new Engine({ target, tokenizer, proposer: null, numSpeculativeTokens: 0, maxBatch: 8, maxQueue: 16 });
    engine.pause();
    engine.submit(request([1, 3]), () => {
      throw new Error('a broken listener');
    });
    const other = collect(engine, request([1, 4]));
    engine.resume();
    expect((await other).tokens).toEqual(await oracle(request([1, 4])));
    await engine.close();
  });
});
