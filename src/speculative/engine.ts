// The speculative engine: continuous batching of sequences, each step
//   admit newcomers -> one batched prefill pass -> proposers draft -> ONE batched target pass over every running
//   sequence's k+1 positions -> rejection sampler accepts -> KV rollback -> stop checks -> token events.
// Plain decoding is the case k = 0. A sequence decoding alone may draft and verify in one fused pass (a draft chain
// fused with the target, DraftModelProposer.proposeAndVerify). Capacity is a result: submit() returns null when the
// queue is full.
import { randomUUID } from 'node:crypto';
import type { Decoder } from '../runtime/decoder.ts';
import { heldBytes } from '../runtime/kv-cache.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import { argmax, isGreedy, logprobOf, sampleFrom, topLogprobs } from '../runtime/sampling.ts';
import { rowProbabilities } from '../runtime/batch-softmax.ts';
import { verify, verifyGreedy } from './rejection-sampler.ts';
import { maskLogits } from '../runtime/structured/token-masker.ts';
import type { Constraint } from '../runtime/structured/constraint.ts';
import { Sequence } from './sequence.ts';
import { CostMemory } from './adaptive-draft-length.ts';
import { predictionMatches } from './prediction-proposer.ts';
import type { ConstraintSpec, EngineEvent, EngineListener, GeneratedTokenLogprob, GenerationRequest, SequenceStats } from './generation-request.ts';
import type { FinishReason } from '../runtime/generation-output.ts';
import type { Proposal, Proposer } from './proposer.ts';

// Longest stretch of steps without an event-loop turn: a newcomer or a cancellation waits at most this (and a step)
// for the engine to see it. A turn costs tens of microseconds; one per 2 ms cost ~6 us a step (~2%) on stories260K.
const YIELD_AFTER_MS = 2;

/** A pass's phase: prefill, plain decode, a proposer's drafting, the target's verification (a fused pass that drafts
 * and verifies in one session.run counts as verify). */
export type ForwardPhase = 'prefill' | 'decode' | 'draft' | 'verify';

export interface EngineHooks {
  onForward?(phase: ForwardPhase, seconds: number, batchSize: number): void;
  onVerify?(drafted: number, accepted: number): void;
  /** `numTokens` arrived `seconds` after the sequence's previous tokens (inter-token latency). */
  onTokens?(numTokens: number, seconds: number): void;
  onFinish?(stats: SequenceStats, finishReason: FinishReason, totalSeconds: number): void;
  /** After every step: batch membership and KV bytes may have changed. */
  onStep?(): void;
}

/** What the server needs of an engine, whether it runs in this thread or in a worker (server/remote-engine.ts). */
export interface EngineHandle {
  /** Queues a request; returns its id, or null when the queue is full. `streaming`: the listener passes tokens on
   * to a client as they come, so they must not be delayed (a worker may otherwise coalesce token events). */
  submit(request: GenerationRequest, listener: EngineListener, opts?: { streaming?: boolean }): string | null;
  cancel(id: string, error?: Error): void;
  abortAll(error: Error): void;
  readonly numRunning: number;
  readonly numWaiting: number;
  readonly kvBytes: number;
  /** Serving: false once closed, or while a worker that died is restarting (RemoteEngine). */
  readonly healthy: boolean;
  /** Test hook: the next target pass is fed this malformed token and fails (engine fault isolation). */
  faultInjection: { badToken: number } | null;
  /** Holds the engine between steps until resume(): requests queue but do not run (tests force a situation with it
   * instead of racing the engine). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

export interface EngineOptions {
  target: Decoder;
  tokenizer: TextTokenizer;
  /** The default proposer (draft model or n-gram); null serves plain decoding only. */
  proposer: Proposer | null;
  /** Used for requests that carry Predicted Outputs. */
  predictionProposer?: Proposer;
  numSpeculativeTokens: number;
  /** Context window (<= the target's). */
  maxModelLen?: number;
  adaptiveDraftLength?: boolean;
  /** Plain decoding for the whole step while the engine holds this many requests or more (running and waiting): in a
   * full batch the verify pass is no longer nearly free per extra position (vLLM's --speculative-disable-by-batch-size).
   * 0 or absent: never. Seeded sampled requests speculate regardless: their text must not depend on the load. */
  disableSpeculationAtBatch?: number;
  maxBatch: number;
  maxQueue: number;
  /** Builds the constraint of a request that asks for one (JSON mode / schema); absent: such requests are refused. */
  constraintFactory?: (spec: ConstraintSpec) => Constraint;
  /** Prompt tokens prefilled per step, so that newcomers do not starve running decodes. */
  maxPrefillTokens?: number;
  hooks?: EngineHooks;
}

// Prompt tokens per prefill step: large enough to admit a burst of short prompts in one pass, small enough that a
// long prompt does not stall running sequences for long.
const DEFAULT_MAX_PREFILL_TOKENS = 2048;

export class Engine implements EngineHandle {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  private looping = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  faultInjection: { badToken: number } | null = null;
  /** What speculation with the default proposer costs against plain decoding, learned across sequences. */
  private readonly costs = { greedy: new CostMemory(), sampled: new CostMemory() };
  /** The last decode step, if it was of one sequence alone: its cost is known when the next step starts. */
  private lastAlone: { seq: Sequence; drafted: number; started: number } | null = null;
  /** A prefill pass ran since the last decode step. */
  private prefilled = false;
  /** The sequences of the step in progress (failed together if the step throws outside its passes). */
  private stepping: Sequence[] = [];
  /** Set while paused: the loop waits on it before each step. */
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  constructor(private readonly o: EngineOptions) {}

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length;
  }

  /** KV memory held: the running sequences' buffers (a batch's shared ones once), the target's past buffers, and the
   * proposer's caches. */
  get kvBytes(): number {
    return heldBytes(this.running.map((s) => s.cache), this.o.target.feedBuffers()) + (this.o.proposer?.kvBytes ?? 0);
  }

  get maxPositions(): number {
    return Math.min(this.o.maxModelLen ?? Infinity, this.o.target.folder.maxPositions);
  }

  /** Queues a request; returns its id, or null when the queue is full. */
  submit(request: GenerationRequest, listener: EngineListener): string | null {
    if (this.closed) throw new Error('engine is shut down');
    if (request.promptIds.length === 0) throw new Error('empty prompt');
    if (request.promptIds.length >= this.maxPositions) {
      throw new Error(`prompt of ${request.promptIds.length} tokens leaves no room in the context window of ${this.maxPositions}`);
    }
    if (this.waiting.length >= this.o.maxQueue) return null;
    const id = randomUUID();
    // At most the engine's maximum, whose graphs were built at start-up (the server refuses more with a 400).
    const maxK = Math.min(request.numSpeculativeTokens ?? this.o.numSpeculativeTokens, this.o.numSpeculativeTokens);
    const proposer = maxK === 0 ? null : request.prediction?.length ? this.o.predictionProposer ?? null : this.o.proposer;
    let constraint: Constraint | undefined;
    if (request.constraint) {
      if (!this.o.constraintFactory) throw new Error('this engine has no constraint support');
      constraint = this.o.constraintFactory(request.constraint);
    }
    const costs = proposer === this.o.proposer ? this.costs[isGreedy(request.sampling) ? 'greedy' : 'sampled'] : undefined;
    // A request that names its draft length gets exactly that (where there is room); others, the engine's choice.
    const adaptive = request.numSpeculativeTokens === undefined && (this.o.adaptiveDraftLength ?? true);
    // The context window bounds prompt and output together (vLLM's max_model_len): a request asking for more ends
    // with finish_reason "length" where the window is full, as the server's validation promises.
    const bounded = { ...request, maxTokens: Math.min(request.maxTokens, this.maxPositions - request.promptIds.length) };
    const seq = new Sequence(id, bounded, this.o.tokenizer, this.o.target.folder.eosTokenIds, this.o.target.newCache(), proposer,
      maxK, adaptive, listener, constraint, costs);
    this.waiting.push(seq);
    this.byId.set(id, seq);
    this.kick();
    return id;
  }

  /** Stops a request; its KV cache is freed at the next step boundary. With `error`, its listener gets it. */
  cancel(id: string, error?: Error): void {
    const seq = this.byId.get(id);
    if (seq) {
      seq.cancelled = true;
      seq.cancelError = error;
    }
  }

  /** Fails every waiting and running request with `error` (shutdown past its deadline). */
  abortAll(error: Error): void {
    for (const id of [...this.byId.keys()]) this.cancel(id, error);
  }

  get healthy(): boolean {
    return !this.closed;
  }

  pause(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.gate = { promise, open };
  }

  resume(): void {
    this.gate?.open();
    this.gate = null;
  }

  /** Resolves when no request is waiting or running. */
  async drain(): Promise<void> {
    while (this.looping) await this.idle;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.abortAll(new Error('the engine is shutting down'));
    this.resume();
    await this.drain();
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    this.idle = new Promise((resolve) => {
      const loop = async () => {
        try {
          // The event loop must serve I/O (new requests, cancellations, health checks) between steps, but a turn
          // costs tens of microseconds, much of a small model's step time beyond its pass (bench:overhead). Passes on
          // onnxruntime-node's public sessions take a turn each (it runs them from a setImmediate); direct ones
          // (runtime/ort-session.ts) take none. So the loop yields only once YIELD_AFTER_MS have gone by without a
          // turn; a marker immediate tells whether a step had one.
          let marked = false;
          let turned = false;
          const mark = () => {
            marked = false;
            turned = true;
          };
          let lastTurn = performance.now();
          while (this.waiting.length > 0 || this.running.length > 0) {
            if (!marked) {
              marked = true;
              setImmediate(mark);
            }
            while (this.gate) await this.gate.promise;
            try {
              await this.step();
            } catch (err) {
              // A fault outside the passes (a proposer's or a constraint's bookkeeping, a hook) fails the requests of
              // that step only; the engine serves on.
              this.failStep(err as Error);
            }
            const now = performance.now();
            if (turned) {
              turned = false;
              lastTurn = now;
            } else if (now - lastTurn >= YIELD_AFTER_MS) {
              await new Promise((r) => setImmediate(r));
              turned = false;
              lastTurn = performance.now();
            }
          }
        } finally {
          this.looping = false;
          resolve();
        }
      };
      void loop();
    });
  }

  private finish(seq: Sequence, error?: Error): void {
    const now = performance.now();
    seq.stats.decodeSeconds = seq.firstTokenAt ? (now - seq.firstTokenAt) / 1000 : 0;
    this.byId.delete(seq.id);
    if (this.lastAlone?.seq === seq) this.lastAlone = null;
    try {
      seq.proposer?.end(seq);
    } catch (err) {
      error ??= err as Error; // the proposer's own state is dropped either way
    }
    seq.cache.clear();
    if (error) {
      emit(seq, { type: 'error', error });
    } else if (!seq.cancelled) {
      if (seq.request.prediction?.length) seq.stats.numPredictionAccepted = predictionMatches(seq.request.prediction, seq.output.tokens);
      this.o.hooks?.onFinish?.(seq.stats, seq.output.finishReason ?? 'length', (now - seq.submittedAt) / 1000);
      emit(seq, {
        type: 'done', finishReason: seq.output.finishReason ?? 'length', text: seq.output.text, tokens: seq.output.tokens, stats: seq.stats,
      });
    }
  }

  /** Fails `seq` alone with `error` (a fault in its own bookkeeping), wherever it is. */
  private failOne(seq: Sequence, error: Error): void {
    for (const list of [this.waiting, this.running]) {
      const at = list.indexOf(seq);
      if (at >= 0) list.splice(at, 1);
    }
    if (this.byId.has(seq.id)) this.finish(seq, error);
  }

  private failStep(error: Error): void {
    const failed = this.stepping;
    this.stepping = [];
    this.lastAlone = null;
    for (const seq of failed) this.failOne(seq, error);
  }

  private removeDone(): void {
    for (const list of [this.waiting, this.running]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i];
        if (s.cancelled || s.output.done) {
          list.splice(i, 1);
          this.finish(s, s.cancelError);
        }
      }
    }
  }

  /** Commits tokens in order until the output finishes; emits one token event with the tokens that entered the output
   * (an EOS ends it without being part of it, as in its text and usage). Returns how many entered. */
  private commit(seq: Sequence, ids: number[], logits: Float32Array[]): number {
    const emitted: number[] = [];
    const logprobs: GeneratedTokenLogprob[] = [];
    let text = '';
    for (let i = 0; i < ids.length && !seq.output.done; i++) {
      const before = seq.output.tokens.length;
      text += seq.output.push(ids[i]);
      if (seq.output.tokens.length === before) break;
      seq.tokens.push(ids[i]);
      emitted.push(ids[i]);
      if (seq.request.logprobs !== undefined) {
        logprobs.push({ id: ids[i], logprob: logprobOf(logits[i], ids[i]), top: topLogprobs(logits[i], seq.request.logprobs) });
      }
      if (seq.constraint && !seq.output.done) {
        // Tokens reaching here were sampled or accepted under the constraint's mask, so the advance succeeds.
        const next = seq.constraint.advance(seq.constraintState, ids[i]);
        // A mask that let through a token the automaton refuses would be a bug: that request fails, clearly.
        if (next === null) throw new Error(`structured output: token ${ids[i]} was allowed by the mask but not by the schema's automaton`);
        seq.constraintState = next;
        if (seq.constraint.isComplete(seq.constraintState)) text += seq.output.finish('stop');
      }
    }
    const now = performance.now();
    if (!seq.firstTokenAt) {
      seq.firstTokenAt = now;
      seq.stats.firstTokenSeconds = (now - seq.submittedAt) / 1000;
    } else if (emitted.length > 0) {
      this.o.hooks?.onTokens?.(emitted.length, (now - seq.lastTokenAt) / 1000);
    }
    seq.lastTokenAt = now;
    seq.stats.numGeneratedTokens = seq.output.tokens.length;
    emit(seq, { type: 'token', ids: emitted, text, ...(seq.request.logprobs !== undefined ? { logprobs } : {}) });
    return emitted.length;
  }

  private async timed<T>(phase: ForwardPhase, batchSize: number, run: () => Promise<T>): Promise<T> {
    const started = performance.now();
    const result = await run();
    this.o.hooks?.onForward?.(phase, (performance.now() - started) / 1000, batchSize);
    return result;
  }

  private async step(): Promise<void> {
    this.removeDone();
    const newcomers: Sequence[] = [];
    let budget = this.o.maxPrefillTokens ?? DEFAULT_MAX_PREFILL_TOKENS;
    while (this.waiting.length > 0 && this.running.length + newcomers.length < this.o.maxBatch) {
      const next = this.waiting[0];
      if (newcomers.length > 0 && next.numPromptTokens > budget) break;
      budget -= next.numPromptTokens;
      newcomers.push(this.waiting.shift()!);
    }
    this.stepping = newcomers;
    if (newcomers.length > 0) {
      await this.prefill(newcomers);
      this.prefilled = true;
    }
    const decoding = this.running.filter((s) => !s.output.done && !s.cancelled && !newcomers.includes(s));
    this.stepping = [...newcomers, ...decoding];
    if (decoding.length > 0) await this.decode(decoding);
    this.removeDone();
    this.o.hooks?.onStep?.();
  }

  private async prefill(seqs: Sequence[]): Promise<void> {
    const now = performance.now();
    for (const s of seqs) s.stats.queueSeconds = (now - s.submittedAt) / 1000;
    let logits: Float32Array[][];
    try {
      logits = await this.timed('prefill', seqs.length, () => this.o.target.forward(seqs.map((s) => ({ cache: s.cache, tokens: s.tokens }))));
    } catch (err) {
      for (const s of seqs) this.finish(s, err as Error);
      return;
    }
    const seconds = (performance.now() - now) / 1000;
    const lasts = logits.map((rows) => rows[rows.length - 1]);
    const rows = seqs.map((s, b) => {
      if (!s.constraint) return lasts[b];
      try {
        return maskLogits(lasts[b], s.constraint.allowed(s.constraintState));
      } catch (err) {
        this.finish(s, err as Error);
        return lasts[b];
      }
    });
    // The sampled rows' distributions, in one batch (runtime/batch-softmax.ts); greedy rows take their argmax.
    const sampled = seqs.flatMap((s, b) => (isGreedy(s.sampling) ? [] : [b]));
    let probs: Float32Array[] = [];
    try {
      if (sampled.length > 0) probs = await rowProbabilities(sampled.map((b) => rows[b]), sampled.map((b) => seqs[b].sampling));
    } catch (err) {
      for (const s of seqs) if (this.byId.has(s.id)) this.finish(s, err as Error);
      return;
    }
    let drawn = 0;
    for (let b = 0; b < seqs.length; b++) {
      const s = seqs[b];
      if (!this.byId.has(s.id)) {
        if (!isGreedy(s.sampling)) drawn++; // failed on its own above; its row was drawn all the same
        continue;
      }
      s.stats.prefillSeconds = seconds;
      s.stats.numTargetPasses++;
      const token = isGreedy(s.sampling) ? argmax(rows[b]) : sampleFrom(probs[drawn++], s.rng);
      try {
        this.commit(s, [token], [lasts[b]]);
        s.proposer?.begin(s);
      } catch (err) {
        this.finish(s, err as Error);
        continue;
      }
      this.running.push(s);
    }
  }

  private async decode(seqs: Sequence[]): Promise<void> {
    const started = performance.now();
    // A step of a sequence decoding alone costs from its start to the start of the next step of the same sequence
    // alone (the engine's work between steps included); anything else in between voids the measurement.
    const timed = this.lastAlone;
    this.lastAlone = null;
    if (timed && seqs.length === 1 && seqs[0] === timed.seq && !this.prefilled) {
      timed.seq.draftLength.recordCost(timed.drafted, (started - timed.started) / 1000);
    }
    this.prefilled = false;
    // Draft lengths: the controller's choice, capped by the tokens still wanted and the context window.
    const limit = this.o.disableSpeculationAtBatch ?? 0;
    // Load counts every request the engine holds (running, just admitted, waiting), as vLLM counts its queue.
    const speculate = limit <= 0 || this.running.length + this.waiting.length < limit;
    const ks = seqs.map((s) => {
      // A request that names its draft length gets it at any load, as documented; so do seeded sampled requests,
      // whose random draws must not depend on the load.
      if (!speculate && !s.seededSampling && s.request.numSpeculativeTokens === undefined) return 0;
      const wanted = s.request.maxTokens - s.output.tokens.length - 1;
      const room = this.maxPositions - s.cache.length - 1;
      return Math.max(0, Math.min(s.draftLength.next(), wanted, room));
    });
    const fault = this.faultInjection;
    this.faultInjection = null;
    let pass: { drafts: Proposal[]; logits: Float32Array[][]; rows: Float32Array[][]; p: (Float32Array[] | null)[] };
    try {
      const { drafts, states, logits, targetProbs } = (await this.fusedPass(seqs, ks, fault)) ?? (await this.draftThenVerify(seqs, ks, fault));
      // The rows verification reads (masked under a constraint), and for sampled sequences their p rows: from the pass
      // where it computed them (a fused sampled step), else all in one batch (runtime/batch-softmax.ts).
      const rows = seqs.map((s, i) => {
        if (!states[i]) return logits[i];
        try {
          return logits[i].map((row, j) => maskLogits(row, s.constraint!.allowed(states[i]![j])));
        } catch (err) {
          this.failOne(s, err as Error);
          return logits[i];
        }
      });
      const need = seqs.flatMap((s, i) => (isGreedy(s.sampling) || targetProbs?.[i] ? [] : [i]));
      const computed = need.length === 0 ? [] : await rowProbabilities(need.flatMap((i) => rows[i]), need.flatMap((i) => rows[i].map(() => seqs[i].sampling)));
      const p = seqs.map((_, i) => targetProbs?.[i] ?? null);
      let at = 0;
      for (const i of need) p[i] = computed.slice(at, (at += rows[i].length));
      pass = { drafts, logits, rows, p };
    } catch (err) {
      // A failed pass fails the requests in it only; their caches are dropped and the engine serves on.
      for (const s of seqs) this.failOne(s, err as Error);
      return;
    }
    const { drafts, logits, rows, p } = pass;

    seqs.forEach((s, i) => {
      if (!this.byId.has(s.id)) return; // failed on its own earlier in this step
      try {
        this.verifyAndCommit(s, drafts[i], rows[i], p[i], logits[i], seqs.length === 1 ? started : null);
      } catch (err) {
        this.failOne(s, err as Error);
      }
    });
  }

  /** One sequence's share of a decode step: verify its drafts against the pass, roll back, commit. */
  private verifyAndCommit(s: Sequence, draft: Proposal, rows: Float32Array[], p: Float32Array[] | null, logits: Float32Array[],
    aloneSince: number | null): void {
    const result = isGreedy(s.sampling)
      ? verifyGreedy(draft.tokens, rows.map(argmax))
      : verify(draft.tokens, draft.probs ?? null, p!, s.rng);
    // Keep the pending token and the accepted drafts; the rejected positions roll back.
    s.cache.rollback(s.cache.length - draft.tokens.length + result.numAccepted);
    s.stats.numTargetPasses++;
    s.stats.numDrafted += draft.tokens.length;
    if (draft.tokens.length > 0) this.o.hooks?.onVerify?.(draft.tokens.length, result.numAccepted);
    s.draftLength.record(draft.tokens.length, result.numAccepted);
    // Accepted drafts come first in result.tokens: those the output kept (before a stop string, max_tokens or EOS
    // ended it) are the ones the request's usage counts.
    s.stats.numAccepted += Math.min(result.numAccepted, this.commit(s, result.tokens, logits));
    s.proposer?.accept(s);
    if (aloneSince !== null) this.lastAlone = { seq: s, drafted: draft.tokens.length, started: aloneSince };
  }

  /** A lone sequence whose proposer drafts and verifies in one fused pass (reported as a verify pass); null where
   * that does not apply. */
  private async fusedPass(seqs: Sequence[], ks: number[], fault: { badToken: number } | null): Promise<PassResult | null> {
    const [s] = seqs;
    if (seqs.length !== 1 || ks[0] === 0 || fault || s.constraint || !s.proposer?.proposeAndVerify) return null;
    const started = performance.now();
    const fused = await s.proposer.proposeAndVerify(s, ks[0], s.cache);
    if (!fused) return null;
    this.o.hooks?.onForward?.('verify', (performance.now() - started) / 1000, 1);
    return { drafts: [{ tokens: fused.tokens, probs: fused.probs }], states: [null], logits: [fused.logits], targetProbs: [fused.targetProbs] };
  }

  /** Proposers draft (batched per proposer), then one batched target pass verifies every sequence's drafts. */
  private async draftThenVerify(seqs: Sequence[], ks: number[], fault: { badToken: number } | null): Promise<PassResult> {
    const drafts: Proposal[] = seqs.map(() => ({ tokens: [] }));
    const groups = new Map<Proposer, number[]>();
    seqs.forEach((s, i) => {
      if (ks[i] > 0 && s.proposer) groups.set(s.proposer, [...(groups.get(s.proposer) ?? []), i]);
    });
    for (const [proposer, idx] of groups) {
      const proposals = await this.timed('draft', idx.length, () => proposer.propose(idx.map((i) => ({ seq: seqs[i], k: ks[i] }))));
      idx.forEach((i, j) => (drafts[i] = proposals[j]));
    }
    // Under a constraint, a proposal is cut at its first token the constraint refuses (point-mass proposers do not
    // know the grammar); the states along the kept draft give each verified position its mask.
    const states = seqs.map((s, i) => {
      if (!s.constraint) return null;
      try {
        return constrainDraft(s.constraint, s.constraintState, drafts[i]);
      } catch (err) {
        // That request alone fails; it stays in this pass (its row is computed and dropped) so the batch's layout holds.
        this.failOne(s, err as Error);
        drafts[i] = { tokens: [] };
        return null;
      }
    });
    const speculating = drafts.some((d) => d.tokens.length > 0);
    const logits = await this.timed(speculating ? 'verify' : 'decode', seqs.length, () => this.o.target.forward(seqs.map((s, i) => ({
      cache: s.cache,
      tokens: [fault ? fault.badToken : s.pending, ...drafts[i].tokens],
    }))));
    return { drafts, states, logits };
  }
}

/** What a decode step's pass returns: each sequence's proposal, the constraint states along it (null: none), the
 * target's logits at each verified position, and where the pass computed them (a fused sampled step), the request's
 * p rows. */
interface PassResult {
  drafts: Proposal[];
  states: (unknown[] | null)[];
  logits: Float32Array[][];
  targetProbs?: (Float32Array[] | undefined)[];
}

/** Cuts `draft` at its first token `constraint` refuses (or after one that completes it); returns the states before
 * each kept draft token and after the last (k + 1 states for k kept tokens). */
function constrainDraft(constraint: Constraint, start: unknown, draft: { tokens: number[]; probs?: Float32Array[] }): unknown[] {
  const states = [start];
  let kept = 0;
  for (const token of draft.tokens) {
    const current = states[states.length - 1];
    if (constraint.isComplete(current)) break;
    const next = constraint.advance(current, token);
    if (next === null) break;
    states.push(next);
    kept++;
  }
  draft.tokens.length = kept;
  if (draft.probs) draft.probs.length = kept;
  return states;
}

/** Hands `event` to the request's listener; a listener that throws harms no other request. */
function emit(seq: Sequence, event: EngineEvent): void {
  try {
    seq.listener(event);
  } catch {
    // the listener's own failure (its client is gone, say): nothing for the engine to do
  }
}
