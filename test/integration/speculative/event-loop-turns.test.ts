// The engine's passes run on direct sessions (runtime/ort-session.ts), which give the event loop no turn; the engine
// yields on a time budget instead. Timers must keep firing while it decodes, plainly and speculatively (fused steps
// on sessions of their own), or new requests, cancellations and a worker's message flushes would wait for the end.
import { describe, expect, it } from 'vitest';
import { Decoder } from '../../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { Engine } from '../../../src/speculative/engine.ts';
import { DraftModelProposer } from '../../../src/speculative/draft-model-proposer.ts';
import { useStoriesPair } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';

requireSharedModels('event-loop turns while the engine decodes');
// The longest stretch without a timer tick, as a share of the whole run: without turns the timer cannot fire until
// the work ends (a gap of the whole run); with them gaps are the engine's budget (2 ms) plus a step, and four
// requests of 480 tokens in a row (one at a time) take hundreds of milliseconds, so a quarter of that leaves room
// for a busy machine's stalls.
const MAX_GAP_SHARE = 0.25;

describe('event-loop turns while the engine decodes', () => {
  let target: Decoder;
  let draft: Decoder;
  let tokenizer: TextTokenizer;
  useStoriesPair((pair) => ({ target, draft, tokenizer } = pair));

  for (const k of [0, 3]) {
    it(`a 1 ms timer keeps firing through four back-to-back generations (k = ${k})`, async () => {
      const engine = new Engine({ target, tokenizer, proposer: k ? new DraftModelProposer(draft, { target }) : null, numSpeculativeTokens: k,
        adaptiveDraftLength: false, maxBatch: 1, maxQueue: 8 });
      const ticks: number[] = [];
      const started = performance.now();
      const timer = setInterval(() => ticks.push(performance.now()), 1);
      const outputs = await Promise.all(['Once upon a time', 'The little dog', 'Mom said', 'The sun was'].map((p) =>
        collect(engine, { promptIds: tokenizer.encode(p), maxTokens: 480, sampling: GREEDY, stop: [], ignoreEos: true })));
      const ended = performance.now();
      clearInterval(timer);
      await engine.close();
      expect(outputs.map((o) => o.tokens.length)).toEqual([480, 480, 480, 480]);
      if (k) expect(outputs.reduce((n, o) => n + o.numAccepted, 0)).toBeGreaterThan(0);
      const times = [started, ...ticks.filter((t) => t < ended), ended];
      const gaps = times.slice(1).map((t, i) => t - times[i]);
      expect(Math.max(...gaps)).toBeLessThan(MAX_GAP_SHARE * (ended - started));
    });
  }
});
