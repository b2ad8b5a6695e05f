// The speculative engine: continuous batching of sequences, each step
//   admit newcomers -> one batched prefill pass -> proposers draft -> ONE batched target pass over every running
//   sequence's k+1 positions -> rejection sampler accepts -> KV rollback -> stop checks -> token events.
// Plain decoding is the case k = 0. A sequence decoding alone may draft and verify in one fused pass (a draft chain
// fused with the target, DraftModelProposer.proposeAndVerify). Capacity is a result: submit() returns null when the
// queue is full.
import { randomUUID } from 'node:crypto';
import { heldBytes } from '../runtime/kv-cache.ts';
import { isGreedy } from '../runtime/sampling.ts';
import type { SequenceConstraint } from '../runtime/structured/constraint.ts';
import type { GrammarSpec } from '../runtime/structured/grammar-spec.ts';
import { Sequence } from './sequence.ts';
import { AcceptanceMemory } from './cost-memory.ts';
import { predictionMatches } from './prediction-proposer.ts';
import { StepPasses } from './step-passes.ts';
import { PrefixCache } from './prefix-cache.ts';
import { EventLoopTurns } from './event-loop-turns.ts';
import { schedulePrefill, type PrefillWork } from './prefill-schedule.ts';
import type { KvCache } from '../runtime/kv-cache.ts';
import type { EngineListener, GenerationRequest } from './generation-request.ts';
import { EngineClosedError, type EngineHandle, type EngineOptions } from './engine-api.ts';

export type { EngineHandle, EngineHooks, EngineOptions, ForwardPhase, TargetModel } from './engine-api.ts';

export class Engine implements EngineHandle {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
  /** Admitted sequences whose prompt is part-way into their cache (chunked prefill). */
  private readonly prefilling: Sequence[] = [];
  private readonly byId = new Map<string, Sequence>();
  /** Sequences whose grammar is compiling (in a grammar worker): they queue once it is ready. */
  private readonly preparing = new Map<Sequence, Promise<void>>();
  private looping = false;
  private closed = false;
  private idle: Promise<void> = Promise.resolve();
  faultInjection: { badToken: number } | null = null;
  /** Acceptance by proposer and kind (greedy or sampled), learned across sequences: a new one starts from it. */
  private readonly acceptance = new Map<string, AcceptanceMemory>();
  /** The sequences of the step in progress (failed together if the step throws outside its passes). */
  private stepping: Sequence[] = [];
  /** Set while paused: the loop waits on it before each step. */
  private gate: { promise: Promise<void>; open: () => void } | null = null;

  private readonly prefixCache: PrefixCache | null;

  /** The step's passes (step-passes.ts), with what they need of the engine. */
  private readonly passes: StepPasses;

  constructor(private readonly o: EngineOptions) {
    this.prefixCache = o.prefixCacheBytes ? new PrefixCache(o.prefixCacheBytes) : null;
    this.passes = new StepPasses({
      options: o,
      maxPositions: () => this.maxPositions,
      load: () => this.running.length + this.prefilling.length + this.waiting.length,
      alive: (seq) => this.byId.has(seq.id),
      failOne: (seq, error) => this.failOne(seq, error),
      run: (seq) => {
        this.prefilling.splice(this.prefilling.indexOf(seq), 1);
        this.running.push(seq);
      },
      takeFault: () => {
        const fault = this.faultInjection;
        this.faultInjection = null;
        return fault;
      },
    });
  }

  get numRunning(): number {
    return this.running.length + this.prefilling.length;
  }

  get numWaiting(): number {
    return this.waiting.length + this.preparing.size;
  }

  /** KV memory held: the admitted sequences' buffers (a batch's shared ones once; a waiting one's where it starts from
   * a cached prefix), the target's past buffers, and the proposer's caches (not the prefix cache's own copies, kept
   * under --prefix-cache-bytes). */
  get kvBytes(): number {
    const caches = [...this.waiting, ...this.prefilling, ...this.running].map((s) => s.cache);
    return heldBytes(caches, this.o.target.feedBuffers()) + (this.o.proposer?.kvBytes ?? 0);
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
    if (this.waiting.length + this.preparing.size >= this.o.maxQueue) return null;
    const id = randomUUID();
    // At most the engine's maximum, whose graphs were built at start-up (the server refuses more with a 400).
    const maxK = Math.min(request.numSpeculativeTokens ?? this.o.numSpeculativeTokens, this.o.numSpeculativeTokens);
    const proposer = maxK === 0 ? null : request.prediction?.length ? this.o.predictionProposer ?? null : this.o.proposer;
    let constraint: SequenceConstraint | undefined;
    if (request.constraint) {
      if (!this.o.constraints) throw new Error('this engine has no structured output support');
      constraint = this.o.constraints.open(request.constraint);
    }
    let prior: AcceptanceMemory | undefined;
    if (proposer) {
      const kind = `${proposer.name}/${isGreedy(request.sampling) ? 'greedy' : 'sampled'}`;
      prior = this.acceptance.get(kind) ?? new AcceptanceMemory();
      this.acceptance.set(kind, prior);
    }
    // A request that names its draft length gets exactly that (where there is room); others, the engine's choice.
    const adaptive = request.numSpeculativeTokens === undefined && (this.o.adaptiveDraftLength ?? true);
    // The context window bounds prompt and output together (vLLM's max_model_len): a request asking for more ends
    // with finish_reason "length" where the window is full, as the server's validation promises.
    const bounded = { ...request, maxTokens: Math.min(request.maxTokens, this.maxPositions - request.promptIds.length) };
    const { cache, draftPrefix } = this.startFrom(request.promptIds, proposer !== null);
    const seq = new Sequence({ id, request: bounded, tokenizer: this.o.tokenizer, eosTokenIds: this.o.target.folder.eosTokenIds,
      cache, draftPrefix, proposer, maxDraftTokens: maxK, adaptive, listener, constraint, prior });
    this.byId.set(id, seq);
    if (!constraint) this.queue(seq);
    // A grammar compiles in its worker while the engine steps on; the sequence queues once it is ready.
    else this.preparing.set(seq, constraint.ready.then(() => (seq.cancelled || this.closed ? this.finish(seq, seq.cancelError) : this.queue(seq)),
      (err: Error) => this.finish(seq, err)).finally(() => this.preparing.delete(seq)));
    return id;
  }

  /** A new sequence's caches: copies of the longest cached prefix of its prompt, else empty. */
  private startFrom(prompt: number[], drafts: boolean): { cache: KvCache; draftPrefix?: { cache: KvCache; tokens: number[] } } {
    const start = this.prefixCache?.startFrom(prompt, drafts) ?? null;
    if (this.prefixCache) this.o.hooks?.onPrefixCache?.(prompt.length, start?.cache.length ?? 0);
    return start ?? { cache: this.o.target.newCache() };
  }

  private queue(seq: Sequence): void {
    this.waiting.push(seq);
    this.kick();
  }

  prepareConstraint(spec: GrammarSpec): Promise<void> {
    if (!this.o.constraints) return Promise.reject(new Error('this engine has no structured output support'));
    return this.o.constraints.prepare(spec);
  }

  /** This step's prefill (prefill-schedule.ts); newcomers it admits join the prefilling. */
  private prefillWork(): PrefillWork[] {
    const { work, admitted } = schedulePrefill(this.prefilling, this.waiting, this.running.length, {
      maxBatch: this.o.maxBatch, maxPrefillTokens: this.o.maxPrefillTokens, prefillChunkTokens: this.o.prefillChunkTokens,
    });
    this.prefilling.push(...this.waiting.splice(0, admitted));
    return work;
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
    while (this.looping || this.preparing.size > 0) {
      await (this.looping ? this.idle : Promise.all(this.preparing.values()));
    }
  }

  /** Stops every request and closes the engine's grammar workers. */
  async close(): Promise<void> {
    this.closed = true;
    this.abortAll(new EngineClosedError('the engine is shutting down'));
    this.resume();
    await this.drain();
    this.prefixCache?.clear();
    await this.o.constraints?.close();
  }

  private kick(): void {
    if (this.looping) return;
    this.looping = true;
    this.idle = new Promise((resolve) => {
      const loop = async () => {
        try {
          const turns = new EventLoopTurns();
          while (this.waiting.length > 0 || this.prefilling.length > 0 || this.running.length > 0) {
            turns.beforeStep();
            while (this.gate) await this.gate.promise;
            try {
              await this.step();
            } catch (err) {
              // A fault outside the passes (a proposer's or a constraint's bookkeeping, a hook) fails the requests of
              // that step only; the engine serves on.
              this.failStep(err as Error);
            }
            await turns.afterStep();
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
    this.passes.forget();
    let draft: { cache: KvCache; tokens: number[] } | null = null;
    try {
      if (this.prefixCache && !error) draft = seq.proposer?.keep?.(seq) ?? null;
      seq.proposer?.end(seq);
    } catch (err) {
      error ??= err as Error; // the proposer's own state is dropped either way
    }
    if (this.prefixCache && !error) this.prefixCache.keepFinished(seq.tokens, seq.cache, draft);
    else draft?.cache.clear();
    seq.cache.clear();
    seq.constraint?.close();
    if (error) {
      seq.emit({ type: 'error', error });
    } else if (!seq.cancelled) {
      if (seq.request.prediction?.length) seq.stats.numPredictionAccepted = predictionMatches(seq.request.prediction, seq.output.tokens);
      this.o.hooks?.onFinish?.(seq.stats, seq.output.finishReason ?? 'length', (now - seq.submittedAt) / 1000);
      seq.emit({
        type: 'done', finishReason: seq.output.finishReason ?? 'length', text: seq.output.text, tokens: seq.output.tokens, stats: seq.stats,
      });
    }
  }

  /** Fails `seq` alone with `error` (a fault in its own bookkeeping), wherever it is. */
  private failOne(seq: Sequence, error: Error): void {
    for (const list of [this.waiting, this.prefilling, this.running]) {
      const at = list.indexOf(seq);
      if (at >= 0) list.splice(at, 1);
    }
    if (this.byId.has(seq.id)) this.finish(seq, error);
  }

  private failStep(error: Error): void {
    const failed = this.stepping;
    this.stepping = [];
    this.passes.forget();
    for (const seq of failed) this.failOne(seq, error);
  }

  private removeDone(): void {
    for (const list of [this.waiting, this.prefilling, this.running]) {
      for (let i = list.length - 1; i >= 0; i--) {
        const s = list[i];
        if (s.cancelled || s.output.done) {
          list.splice(i, 1);
          this.finish(s, s.cancelError);
        }
      }
    }
  }

  private async step(): Promise<void> {
    this.removeDone();
    const work = this.prefillWork();
    const prefilled = work.map((w) => w.seq);
    this.stepping = prefilled;
    if (work.length > 0) await this.passes.prefill(work);
    const decoding = this.running.filter((s) => !s.output.done && !s.cancelled && !prefilled.includes(s));
    this.stepping = [...prefilled, ...decoding];
    if (decoding.length > 0) await this.passes.decode(decoding);
    this.removeDone();
    this.o.hooks?.onStep?.();
  }
}
