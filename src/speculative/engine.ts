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
import type { EngineListener, GenerationRequest } from './generation-request.ts';
import type { EngineHandle, EngineOptions } from './engine-api.ts';

export type { EngineHandle, EngineHooks, EngineOptions, ForwardPhase, TargetModel } from './engine-api.ts';

// Longest stretch of steps without an event-loop turn: a newcomer or a cancellation waits at most this (and a step)
// for the engine to see it. A turn costs tens of microseconds, a large share of a small model's step (docs/design.md,
// "The engine").
const YIELD_AFTER_MS = 2;

// Prompt tokens per prefill step: large enough to admit a burst of short prompts in one pass, small enough that a
// long prompt does not stall running sequences for long.
const DEFAULT_MAX_PREFILL_TOKENS = 2048;

export class Engine implements EngineHandle {
  private readonly waiting: Sequence[] = [];
  private readonly running: Sequence[] = [];
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

  /** The step's passes (step-passes.ts), with what they need of the engine. */
  private readonly passes: StepPasses;

  constructor(private readonly o: EngineOptions) {
    this.passes = new StepPasses({
      options: o,
      maxPositions: () => this.maxPositions,
      load: () => this.running.length + this.waiting.length,
      alive: (seq) => this.byId.has(seq.id),
      finish: (seq, error) => this.finish(seq, error),
      failOne: (seq, error) => this.failOne(seq, error),
      run: (seq) => this.running.push(seq),
      takeFault: () => {
        const fault = this.faultInjection;
        this.faultInjection = null;
        return fault;
      },
    });
  }

  get numRunning(): number {
    return this.running.length;
  }

  get numWaiting(): number {
    return this.waiting.length + this.preparing.size;
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
    const seq = new Sequence({ id, request: bounded, tokenizer: this.o.tokenizer, eosTokenIds: this.o.target.folder.eosTokenIds,
      cache: this.o.target.newCache(), proposer, maxDraftTokens: maxK, adaptive, listener, constraint, prior });
    this.byId.set(id, seq);
    if (!constraint) this.queue(seq);
    // A grammar compiles in its worker while the engine steps on; the sequence queues once it is ready.
    else this.preparing.set(seq, constraint.ready.then(() => (seq.cancelled || this.closed ? this.finish(seq, seq.cancelError) : this.queue(seq)),
      (err: Error) => this.finish(seq, err)).finally(() => this.preparing.delete(seq)));
    return id;
  }

  private queue(seq: Sequence): void {
    this.waiting.push(seq);
    this.kick();
  }

  prepareConstraint(spec: GrammarSpec): Promise<void> {
    if (!this.o.constraints) return Promise.reject(new Error('this engine has no structured output support'));
    return this.o.constraints.prepare(spec);
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
    this.abortAll(new Error('the engine is shutting down'));
    this.resume();
    await this.drain();
    await this.o.constraints?.close();
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
    this.passes.forget();
    try {
      seq.proposer?.end(seq);
    } catch (err) {
      error ??= err as Error; // the proposer's own state is dropped either way
    }
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
    for (const list of [this.waiting, this.running]) {
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
    if (newcomers.length > 0) await this.passes.prefill(newcomers);
    const decoding = this.running.filter((s) => !s.output.done && !s.cancelled && !newcomers.includes(s));
    this.stepping = [...newcomers, ...decoding];
    if (decoding.length > 0) await this.passes.decode(decoding);
    this.removeDone();
    this.o.hooks?.onStep?.();
  }
}
