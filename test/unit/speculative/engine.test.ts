// The engine against a fake target and fake proposers (no ONNX): admission, the prefill, draft-length caps, rollback,
// cancellation and the constraint cut, observed through what the fake target was asked to compute.
import { beforeAll, describe, expect, it } from 'vitest';
import { Engine, type TargetModel } from '../../../src/speculative/engine.ts';
import type { KvCache } from '../../../src/runtime/kv-cache.ts';
import type { ForwardRow } from '../../../src/runtime/kv-feeds.ts';
import { TextTokenizer } from '../../../src/runtime/tokenizer.ts';
import { GREEDY } from '../../../src/runtime/sampling.ts';
import { RuleConstraint, ruleConstraints } from '../../helpers/fake-constraint.ts';
import type { GenerationRequest } from '../../../src/speculative/generation-request.ts';
import type { Proposal, ProposalContext, Proposer } from '../../../src/speculative/proposer.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { collect } from '../../helpers/engine-run.ts';

const V = 512;
/** The fake model's greedy rule: the token after `t` (never EOS 2). */
const next = (t: number) => 3 + ((t * 37 + 11) % (V - 3));

class FakeCache implements KvCache {
  tokens: number[] = [];
  rollbacks: number[] = [];
  get length() {
    return this.tokens.length;
  }
  get bytes() {
    return this.tokens.length * 4;
  }
  buffers(): ArrayBufferLike[] {
    return [];
  }
  rollback(length: number): void {
    this.rollbacks.push(this.tokens.length - length);
    this.tokens.length = length;
  }
  clear(): void {
    this.tokens = [];
  }
  fork(length: number): FakeCache {
    const copy = new FakeCache();
    copy.tokens = this.tokens.slice(0, length);
    return copy;
  }
}

class FakeTarget implements TargetModel {
  readonly folder = { maxPositions: 64, eosTokenIds: [2] };
  /** Every pass: the number of rows and each row's new tokens. */
  passes: number[][] = [];
  caches: FakeCache[] = [];
  newCache(): KvCache {
    const c = new FakeCache();
    this.caches.push(c);
    return c;
  }
  async forward(rows: ForwardRow[]): Promise<Float32Array[][]> {
    this.passes.push(rows.map((r) => r.tokens.length));
    return rows.map((r) => {
      const cache = r.cache as FakeCache;
      if (cache.length + r.tokens.length > this.folder.maxPositions) throw new Error('past the context');
      cache.tokens.push(...r.tokens);
      return (r.lastOnly ? r.tokens.slice(-1) : r.tokens).map((t) => Float32Array.from({ length: V }, (_, v) => (v === next(t) ? 10 : 0)));
    });
  }
  feedBuffers(): ArrayBufferLike[] {
    return [];
  }
}

/** Proposes `right` correct tokens, then wrong ones, up to k. */
class FakeProposer implements Proposer {
  readonly name = 'fake';
  asked: number[] = [];
  constructor(private readonly right: number) {}
  begin(): void {}
  accept(): void {}
  end(): void {}
  async propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]> {
    return requests.map(({ seq, k }) => {
      this.asked.push(k);
      const tokens: number[] = [];
      let t = seq.tokens[seq.tokens.length - 1];
      for (let i = 0; i < k; i++) tokens.push((t = i < this.right ? next(t) : 5));
      return { tokens };
    });
  }
}

const oracle = (prompt: number[], n: number) => {
  const out: number[] = [];
  let t = prompt[prompt.length - 1];
  for (let i = 0; i < n; i++) out.push((t = next(t)));
  return out;
};
const request = (promptIds: number[], maxTokens: number, extra: Partial<GenerationRequest> = {}): GenerationRequest =>
  ({ promptIds, maxTokens, sampling: GREEDY, stop: [], ignoreEos: true, ...extra });

describe('engine (fake target and proposers)', () => {
  let tokenizer: TextTokenizer;
  beforeAll(() => {
    tokenizer = TextTokenizer.load(tinyModel());
  });
  const engine = (target: FakeTarget, proposer: Proposer | null, extra: Partial<ConstructorParameters<typeof Engine>[0]> = {}) =>
    new Engine({ target, tokenizer, proposer, numSpeculativeTokens: 4, adaptiveDraftLength: false, maxBatch: 8, maxQueue: 8, ...extra });

  it('admits up to the batch, queues up to the queue, refuses beyond; prefills newcomers in one pass', async () => {
    const target = new FakeTarget();
    const e = engine(target, null, { maxBatch: 2, maxQueue: 1 });
    e.pause();
    const listener = () => {};
    const ids = [e.submit(request([1, 10], 3), listener), e.submit(request([1, 20, 21], 3), listener), e.submit(request([1, 30], 3), listener)];
    expect(ids.every((id) => id !== null)).toBe(false); // the queue holds one: the second submit already filled it
    expect(e.numWaiting).toBe(1);
    e.resume();
    await e.drain();
    const paused = engine(target, null, { maxBatch: 2, maxQueue: 4 });
    target.passes = [];
    paused.pause();
    const runs = [collect(paused, request([1, 10], 3)), collect(paused, request([1, 20, 21], 3)), collect(paused, request([1, 30], 3))];
    paused.resume();
    const got = await Promise.all(runs);
    expect(got.map((g) => g.tokens)).toEqual([oracle([10], 3), oracle([21], 3), oracle([30], 3)]);
    expect(target.passes[0]).toEqual([2, 3]); // the first two prefilled together; the third waited for room
    await paused.close();
  });

  it('verifies drafts in one pass, keeps the right ones and the bonus token, and rolls back the rest', async () => {
    const target = new FakeTarget();
    const proposer = new FakeProposer(2);
    const e = engine(target, proposer);
    const got = await collect(e, request([1, 7], 10));
    expect(got.tokens).toEqual(oracle([7], 10));
    // Each decode pass is the pending token and 4 drafts: 2 accepted, 2 rolled back, plus the bonus token.
    expect(target.passes.slice(1, 3)).toEqual([[5], [5]]);
    expect(target.caches[0].rollbacks.slice(0, 2)).toEqual([2, 2]);
    expect(got.numAccepted).toBeGreaterThan(0);
    await e.close();
  });

  it('caps the draft length by the tokens still wanted and by the context left', async () => {
    const target = new FakeTarget();
    const proposer = new FakeProposer(4);
    const e = engine(target, proposer);
    await collect(e, request([1, 7], 4));
    // 4 wanted: the prefill gives one; then at most 4 - 1 - 1 = 2 drafts before the last token.
    expect(Math.max(...proposer.asked)).toBeLessThanOrEqual(2);
    proposer.asked = [];
    const nearEnd = Array.from({ length: 60 }, (_, i) => 3 + i);
    const got = await collect(e, request(nearEnd, 10));
    expect(got.tokens).toEqual(oracle(nearEnd, 4)); // the window holds 64: 60 + 4
    expect(got.finishReason).toBe('length');
    expect(target.passes.every((p) => p.every((n) => n <= 64))).toBe(true);
    await e.close();
  });

  it('cancels a running request at the next step and frees its cache; the others run on', async () => {
    const target = new FakeTarget();
    const e = engine(target, null);
    const events: string[] = [];
    // Cancelled from its own first token event: while it runs, whatever the timing.
    const id: string = e.submit(request([1, 7], 40), (ev) => {
      events.push(ev.type);
      if (events.length === 1) e.cancel(id);
    })!;
    const other = collect(e, request([1, 8], 40));
    const done = await other;
    expect(done.tokens).toEqual(oracle([8], 40));
    expect(events).toEqual(['token']); // its first token, then nothing: no more tokens, no done
    expect(target.caches[0].length).toBe(0);
    expect([e.numRunning, e.numWaiting]).toEqual([0, 0]);
    await e.close();
  });

  it('rejects a drafted token the constraint refuses at its own position, and keeps the output inside it', async () => {
    const target = new FakeTarget();
    const banned = oracle([7], 6)[3]; // the model's 4th token: the constraint forbids it
    const constraint = new RuleConstraint(V, (_, t) => t !== banned && t !== 2);
    const proposer = new FakeProposer(4);
    const e = engine(target, proposer, { constraints: ruleConstraints(() => constraint) });
    const got = await collect(e, request([1, 7], 6, { constraint: { type: 'json' } }));
    expect(got.tokens).not.toContain(banned);
    expect(got.tokens.slice(0, 3)).toEqual(oracle([7], 3));
    // The banned token may be verified (its mask rejects it), but it is rolled back, never kept.
    expect(target.caches[0].tokens).not.toContain(banned);
    await e.close();
  });
});
