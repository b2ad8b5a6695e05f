// Exactness, greedy: for each proposer, k in {1, 2, 4, 8}, and 1..8 concurrent requests of different lengths that
// join at different steps, the engine's output equals target-only greedy decoding token for token.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { generate } from '../../helpers/plain-generation.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { NgramProposer } from '../../../src/speculative/ngram-proposer.ts';
import type { Proposer } from '../../../src/speculative/proposer.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import { earlyExitDraft, storiesDraftModel, storiesModel, tinyModel } from '../../helpers/model-fixtures.ts';
import { collect, runStaggered } from '../../helpers/engine-run.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('greedy exactness on stories260K');
requireSharedModels('seeded sampling under load on stories260K');

const STORY_PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She',
  'One day, a boy named Tim', 'The sun was', 'Mom said', 'There was a cat who liked to'];

interface Setup { target: Decoder; tokenizer: TextTokenizer; proposers: Record<string, () => Promise<Proposer>>; prompts: string[] }

async function oracle(s: Setup, requests: GenerationRequest[]): Promise<number[][]> {
  const out: number[][] = [];
  for (const r of requests) out.push((await generate(s.target, s.tokenizer, r.promptIds, { maxTokens: r.maxTokens, sampling: GREEDY })).tokens);
  return out;
}

function requestsFor(s: Setup, n: number): GenerationRequest[] {
  return s.prompts.slice(0, n).map((p, i) => ({
    promptIds: s.tokenizer.encode(p), maxTokens: 24 + 9 * i, sampling: GREEDY, stop: [],
  }));
}

function exactnessSuite(name: string, setup: () => Promise<Setup>) {
  describe(name, () => {
    let s: Setup;
    const expected = new Map<number, number[][]>();
    beforeAll(async () => {
      s = await setup();
      for (const n of [1, 3, 8]) expected.set(n, await oracle(s, requestsFor(s, n)));
    });
    afterAll(async () => s.target.close());

    for (const proposerName of ['draft', 'early-exit', 'ngram']) {
      for (const k of [1, 2, 4, 8]) {
        it(`${proposerName}, k=${k}: 1, 3 and 8 staggered requests equal target-only greedy`, async () => {
          const proposer = await s.proposers[proposerName]();
          let drafted = 0;
          let accepted = 0;
          for (const n of [1, 3, 8]) {
            const engine = new Engine({ target: s.target, tokenizer: s.tokenizer, proposer, numSpeculativeTokens: k,
              adaptiveDraftLength: false, maxBatch: 8, maxQueue: 16 });
            const got = await runStaggered(engine, requestsFor(s, n), 3);
            expect(got.map((g) => g.tokens)).toEqual(expected.get(n));
            drafted += got.reduce((a, g) => a + g.numDrafted, 0);
            accepted += got.reduce((a, g) => a + g.numAccepted, 0);
            await engine.close();
          }
          // Exactness with speculation that really happened: drafts proposed, some accepted (and so some verified).
          expect(drafted).toBeGreaterThan(0);
          expect(accepted).toBeGreaterThan(0);
        });
      }
    }
  });
}

const draftDecoders: Decoder[] = [];
afterAll(async () => {
  for (const d of draftDecoders) await d.close();
});
const draftProposer = async (dir: string, target: Decoder) => {
  const d = await Decoder.open(dir);
  draftDecoders.push(d);
  return new DraftModelProposer(d, { target });
};

describe('stories260K', () => {
  exactnessSuite('stories260K target', async () => {
    const dir = storiesModel();
    const draftDir = storiesDraftModel();
    const earlyDir = earlyExitDraft(dir, 2);
    const target = await Decoder.open(dir);
    return {
      target, tokenizer: TextTokenizer.load(dir), prompts: STORY_PROMPTS,
      proposers: { draft: () => draftProposer(draftDir, target), 'early-exit': () => draftProposer(earlyDir, target), ngram: async () => new NgramProposer() },
    };
  });
});

exactnessSuite('random tiny target', async () => {
  const dir = tinyModel({ seed: 11, numLayers: 3 });
  const earlyDir = earlyExitDraft(dir, 1);
  const target = await Decoder.open(dir);
  return {
    target, tokenizer: TextTokenizer.load(dir),
    prompts: ['abc', 'hello there', 'x y z', 'a b c d e f', 'zz', 'the quick brown fox', 'q', 'lorem ipsum dolor'],
    proposers: { draft: () => draftProposer(earlyDir, target), 'early-exit': () => draftProposer(earlyDir, target), ngram: async () => new NgramProposer() },
  };
});

/** The random tiny target with its 1-layer early-exit draft, and greedy requests with their target-only outputs. */
async function tinyPair(prompts: string[], maxTokens?: number) {
  const dir = tinyModel({ seed: 11, numLayers: 3 });
  const target = await Decoder.open(dir);
  const tokenizer = TextTokenizer.load(dir);
  const draft = await Decoder.open(earlyExitDraft(dir, 1));
  draftDecoders.push(draft);
  const s: Setup = { target, tokenizer, proposers: {}, prompts };
  const requests = requestsFor(s, prompts.length).map((r) => (maxTokens ? { ...r, maxTokens } : r));
  return { target, tokenizer, draft, requests, expected: await oracle(s, requests) };
}

describe('speculation off for large batches (disableSpeculationAtBatch)', () => {
  it('drafts nothing while the batch is at the limit, drafts alone, and stays exact', async () => {
    const { target, tokenizer, draft, requests, expected } = await tinyPair(['abc', 'hello there', 'x y z']);
    const proposer = new DraftModelProposer(draft, { target });
    const passes: { phase: string; batch: number }[] = [];
    const engine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 4, adaptiveDraftLength: false,
      disableSpeculationAtBatch: 3, maxBatch: 8, maxQueue: 16, hooks: { onForward: (phase, _s, batch) => passes.push({ phase, batch }) } });
    const together = await Promise.all(requests.map((r) => collect(engine, r)));
    expect(together.map((g) => g.tokens)).toEqual(expected);
    // Steps with 3 running decoded plainly; steps with fewer drafted and verified.
    expect(passes.filter((p) => p.phase === 'decode' && p.batch === 3).length).toBeGreaterThan(5);
    expect(passes.filter((p) => (p.phase === 'draft' || p.phase === 'verify') && p.batch >= 3)).toEqual([]);
    expect(passes.filter((p) => p.phase === 'verify').length).toBeGreaterThan(0);
    const alone = await collect(engine, requests[0]);
    expect(alone.tokens).toEqual(expected[0]);
    expect(alone.numDrafted).toBeGreaterThan(0);
    await engine.close();
    await target.close();
  });
});

describe('adaptive draft length on measured cost (the server default)', () => {
  it('measures plain and speculative steps of a lone sequence, varies k, and stays exact', async () => {
    const { target, tokenizer, draft, requests, expected } = await tinyPair(['abc', 'hello there', 'x y z', 'a b c d e f'], 120);
    const proposer = new DraftModelProposer(draft, { target });
    const phases: string[] = [];
    const drafted = new Set<number>();
    const engine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 4, maxBatch: 8, maxQueue: 16,
      hooks: { onForward: (phase) => phases.push(phase), onVerify: (d) => drafted.add(d) } });
    for (const [i, r] of requests.entries()) expect((await collect(engine, r)).tokens).toEqual(expected[i]);
    // Plain steps (the cost probe, or the choice) and speculative steps of more than one length.
    expect(phases.filter((p) => p === 'decode').length).toBeGreaterThan(0);
    expect(phases.filter((p) => p === 'verify').length).toBeGreaterThan(0);
    expect(drafted.size).toBeGreaterThan(1);

    // A request that names its draft length drafts exactly that many at every step (the last ones excepted, where
    // fewer tokens are wanted).
    const fixed: number[] = [];
    const fixedEngine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 4, maxBatch: 8, maxQueue: 16,
      hooks: { onVerify: (d) => fixed.push(d) } });
    const got = await collect(fixedEngine, { ...requests[1], numSpeculativeTokens: 3 });
    expect(got.tokens).toEqual(expected[1]);
    expect(fixed.length).toBeGreaterThan(10);
    expect(fixed.slice(0, -3).every((d) => d === 3)).toBe(true);
    await fixedEngine.close();
    await engine.close();
    await target.close();
  });
});

describe('fused speculative steps (a draft chain and the verify pass in one session.run)', () => {
  it('serve a lone greedy stream with one pass per step, exactly; batches and fuse: false draft apart', async () => {
    const { target, tokenizer, draft, requests, expected } = await tinyPair(['abc', 'hello there', 'x y z']);
    for (const fuse of [true, false]) {
      const phases: string[] = [];
      const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { fuse, target }), numSpeculativeTokens: 3,
        adaptiveDraftLength: false, maxBatch: 8, maxQueue: 16, hooks: { onForward: (phase) => phases.push(phase) } });
      const targetPasses = target.numForwards;
      const alone = await collect(engine, requests[0]);
      expect(alone.tokens).toEqual(expected[0]);
      const verifies = phases.filter((p) => p === 'verify').length;
      expect(verifies).toBeGreaterThan(3);
      // Fused: no separate draft pass, and one target pass per step (plus the prefill).
      expect(phases.filter((p) => p === 'draft').length).toBe(fuse ? 0 : verifies);
      expect(target.numForwards - targetPasses).toBe(verifies + 1);
      phases.length = 0;
      // All submitted in one tick, so that they run as a batch from the engine's next step on, however slow the machine.
      const together = await Promise.all(requests.map((r) => collect(engine, r)));
      expect(together.map((g) => g.tokens)).toEqual(expected);
      expect(phases.filter((p) => p === 'draft').length).toBeGreaterThan(0); // batched steps draft apart
      await engine.close();
    }
    await target.close();
  });
});

describe('a pass whose graph cannot be built', () => {
  it('is given up for good, said in the mode, and the proposer drafts apart, exactly; a failing run is reported, not swallowed', async () => {
    const { target, tokenizer, draft, requests, expected } = await tinyPair(['abc', 'hello there']);
    const build = vi.spyOn(draft, 'prepareStep').mockRejectedValue(new Error('Concat: shapes differ'));
    const proposer = new DraftModelProposer(draft, { target });
    await proposer.warmUp(3);
    expect(proposer.mode()).toBe('draft with a draft chain (fuse unavailable: Concat: shapes differ)');
    const phases: string[] = [];
    const engine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 3, adaptiveDraftLength: false, maxBatch: 8, maxQueue: 16,
      hooks: { onForward: (phase) => phases.push(phase) } });
    expect((await collect(engine, requests[0])).tokens).toEqual(expected[0]);
    expect(phases).toContain('draft');
    expect(build).toHaveBeenCalledTimes(1); // not tried again at each step
    build.mockRestore();
    // A chain that is built but fails to run is the engine's to report (to that request), not a reason to change mode.
    const run = vi.spyOn(draft, 'draftChain').mockRejectedValueOnce(new Error('chain run failed'));
    await expect(collect(engine, requests[1])).rejects.toThrow(/chain run failed/);
    run.mockRestore();
    expect(proposer.mode()).toBe('draft with a draft chain (fuse unavailable: Concat: shapes differ)');
    expect((await collect(engine, requests[1])).tokens).toEqual(expected[1]);
    await engine.close();
    await target.close();
  });
});

describe('seeded sampling under load', () => {
  it('gives the same text alone and in a batch at the speculation load limit', async () => {
    const dir = storiesModel();
    const target = await Decoder.open(dir);
    const tokenizer = TextTokenizer.load(dir);
    const draft = await Decoder.open(storiesDraftModel());
    draftDecoders.push(draft);
    const engine = new Engine({ target, tokenizer, proposer: new DraftModelProposer(draft, { target }), numSpeculativeTokens: 3,
      adaptiveDraftLength: false, disableSpeculationAtBatch: 2, maxBatch: 8, maxQueue: 16 });
    const seeded = STORY_PROMPTS.slice(0, 3).map((p, i) => ({ promptIds: tokenizer.encode(p), maxTokens: 40, stop: [],
      sampling: { temperature: 1, topK: 0, topP: 1, minP: 0 }, seed: 40 + i }));
    const alone = [];
    for (const r of seeded) alone.push((await collect(engine, r)).tokens);
    const together = await Promise.all(seeded.map((r) => collect(engine, r)));
    expect(together.map((g) => g.tokens)).toEqual(alone);
    expect(together.every((g) => g.numDrafted > 0)).toBe(true);
    await engine.close();
    await target.close();
  });
});
