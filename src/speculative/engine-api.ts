// What the engine is to the server (EngineHandle), what it is built from (EngineOptions), and what it needs of the
// target model (TargetModel: a Decoder, or a fake in unit tests).
import type { KvCache } from '../runtime/kv-cache.ts';
import type { ForwardRow } from '../runtime/kv-feeds.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import type { ConstraintProvider } from '../runtime/structured/constraint.ts';
import type { GrammarSpec } from '../runtime/structured/grammar-spec.ts';
import type { FinishReason } from '../runtime/generation-output.ts';
import type { EngineListener, GenerationRequest, SequenceStats } from './generation-request.ts';
import type { Proposer } from './proposer.ts';

/** What the engine needs of the target: its context and EOS ids, caches, and one batched pass over many rows
 * (runtime/decoder.ts). */
export interface TargetModel {
  readonly folder: { readonly maxPositions: number; readonly eosTokenIds: readonly number[] };
  newCache(): KvCache;
  /** Logits for every new position of every row (of a `lastOnly` row, for its last position alone); appends the rows'
   * tokens to their caches. */
  forward(rows: ForwardRow[]): Promise<Float32Array[][]>;
  /** KV memory the model keeps between passes beyond the caches' own. */
  feedBuffers(): ArrayBufferLike[];
}

/** A pass's phase: prefill, plain decode, a proposer's drafting, the target's verification (a fused pass that drafts
 * and verifies in one session.run counts as verify). */
export type ForwardPhase = 'prefill' | 'decode' | 'draft' | 'verify';

export interface EngineHooks {
  onForward?(phase: ForwardPhase, seconds: number, batchSize: number): void;
  onVerify?(drafted: number, accepted: number): void;
  /** Each decode step: the draft length of every sequence in it (0: plain decoding). */
  onDraftLengths?(ks: number[]): void;
  /** `numTokens` arrived `seconds` after the sequence's previous tokens (inter-token latency). */
  onTokens?(numTokens: number, seconds: number): void;
  onFinish?(stats: SequenceStats, finishReason: FinishReason, totalSeconds: number): void;
  /** A request's prompt looked up in the prefix cache: its tokens, and those whose KV was found. */
  onPrefixCache?(queried: number, hit: number): void;
  /** After every step: batch membership and KV bytes may have changed. */
  onStep?(): void;
}

/** Why requests end when the engine closes or the server's shutdown deadline passes: not a fault of theirs or of
 * the engine, so the server answers 503 "retry elsewhere", not 500. */
export class EngineClosedError extends Error {
  override readonly name = 'EngineClosedError';
}

/** What the server needs of an engine, whether it runs in this thread or in a worker (server/remote-engine.ts). */
export interface EngineHandle {
  /** Queues a request; returns its id, or null when the queue is full. `streaming`: the listener passes tokens on
   * to a client as they come, so they must not be delayed (a worker may otherwise coalesce token events). */
  submit(request: GenerationRequest, listener: EngineListener, opts?: { streaming?: boolean }): string | null;
  cancel(id: string, error?: Error): void;
  /** Compiles a request's grammar ahead of submit (off the engine's step loop), so that the edge can refuse a bad one
   * with a 400 before it answers; rejects with a GrammarError then. */
  prepareConstraint(spec: GrammarSpec): Promise<void>;
  /** Ends every request with `error` (an EngineClosedError at shutdown). */
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
  target: TargetModel;
  tokenizer: TextTokenizer;
  /** The default proposer (draft model or n-gram); null serves plain decoding only. */
  proposer: Proposer | null;
  /** Used for requests that carry Predicted Outputs. */
  predictionProposer?: Proposer;
  numSpeculativeTokens: number;
  /** Context window (<= the target's). */
  maxModelLen?: number;
  adaptiveDraftLength?: boolean;
  /** An override of the goodput policy: plain decoding for the whole step while the engine holds this many requests or
   * more, running and waiting (vLLM's --speculative-disable-by-batch-size). 0 or absent: never. Seeded sampled requests
   * speculate regardless: their text must not depend on the load. */
  disableSpeculationAtBatch?: number;
  maxBatch: number;
  maxQueue: number;
  /** Grammars for requests that ask for structured output (runtime/structured/grammar-service.ts); absent: such
   * requests are refused. */
  constraints?: ConstraintProvider;
  /** Bytes of finished sequences' KV kept for requests that share their prefix (prefix-cache.ts); 0 or absent: off. */
  prefixCacheBytes?: number;
  /** Prompt tokens prefilled per step, so that newcomers do not starve running decodes. */
  maxPrefillTokens?: number;
  /** Prompt tokens prefilled per step while other sequences decode (chunked prefill). */
  prefillChunkTokens?: number;
  hooks?: EngineHooks;
}

