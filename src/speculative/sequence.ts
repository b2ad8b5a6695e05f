// One request inside the engine: its target KV cache, committed tokens, output state, RNG, draft-length controller
// and statistics.
import type { KvCache } from '../runtime/kv-cache.ts';
import { GenerationOutput } from '../runtime/generation-output.ts';
import { Xoshiro128, type Rng } from '../runtime/rng.ts';
import { isGreedy, logprobOf, topLogprobs } from '../runtime/sampling.ts';
import { hasPenalties, penalize } from '../runtime/logit-penalties.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import type { AcceptanceMemory } from './cost-memory.ts';
import { draftLengthPolicy, type DraftLengthPolicy } from './draft-length.ts';
import type { EngineEvent, EngineListener, GeneratedTokenLogprob, GenerationRequest, SequenceStats } from './generation-request.ts';
import type { ProposalContext, Proposer } from './proposer.ts';
import type { SequenceConstraint } from '../runtime/structured/constraint.ts';

export interface SequenceOptions {
  id: string;
  request: GenerationRequest;
  tokenizer: TextTokenizer;
  eosTokenIds: readonly number[];
  cache: KvCache;
  proposer: Proposer | null;
  /** The longest draft (0: plain decoding). */
  maxDraftTokens: number;
  /** The draft length adapts (draft-length.ts), else it stays at maxDraftTokens. */
  adaptive: boolean;
  listener: EngineListener;
  constraint?: SequenceConstraint;
  /** The acceptance of earlier sequences of its proposer and kind, which its own starts from (cost-memory.ts). */
  prior?: AcceptanceMemory;
  /** The draft model's cache for a prefix of the prompt, from the prefix cache. */
  draftPrefix?: { cache: KvCache; tokens: number[] };
}

export class Sequence implements ProposalContext {
  readonly tokens: number[];
  readonly numPromptTokens: number;
  readonly rng: Rng;
  readonly output: GenerationOutput;
  readonly draftLength: DraftLengthPolicy;
  /** Sampled with a seed: its k must not depend on timing or load (reproducibility). */
  readonly seededSampling: boolean;
  readonly submittedAt = performance.now();
  firstTokenAt = 0;
  lastTokenAt = 0;
  cancelled = false;
  /** Set when the engine, not the client, stopped the sequence: reported to the listener. */
  cancelError?: Error;
  readonly stats: SequenceStats;

  readonly id: string;
  readonly request: GenerationRequest;
  readonly cache: KvCache;
  readonly proposer: Proposer | null;
  readonly listener: EngineListener;
  readonly constraint?: SequenceConstraint;
  readonly draftPrefix?: { cache: KvCache; tokens: number[] };

  constructor(o: SequenceOptions) {
    ({ id: this.id, request: this.request, cache: this.cache, proposer: this.proposer, listener: this.listener,
      constraint: this.constraint, draftPrefix: this.draftPrefix } = o);
    const { request, proposer } = o;
    this.tokens = [...request.promptIds];
    this.numPromptTokens = request.promptIds.length;
    this.rng = new Xoshiro128(request.seed);
    this.output = new GenerationOutput(o.tokenizer, request.promptIds, {
      maxTokens: request.maxTokens, stop: request.stop, eosTokenIds: [...o.eosTokenIds], ignoreEos: request.ignoreEos,
    });
    // Timing- or load-driven choices of k would make a seeded sampled request draw its random numbers differently
    // from run to run: those adapt on acceptance alone, and speculate whatever the load, so that the same seed gives
    // the same text.
    this.seededSampling = request.seed !== undefined && !isGreedy(request.sampling);
    this.draftLength = draftLengthPolicy(proposer ? o.maxDraftTokens : 0, { adaptive: o.adaptive, reproducible: this.seededSampling, prior: o.prior });
    this.stats = {
      numPromptTokens: this.numPromptTokens, numCachedTokens: o.cache.length, numGeneratedTokens: 0, numDrafted: 0, numAccepted: 0,
      numPredictionTokens: request.prediction?.length ?? 0, numPredictionAccepted: 0, numTargetPasses: 0,
      queueSeconds: 0, prefillSeconds: 0, firstTokenSeconds: 0, decodeSeconds: 0,
    };
  }

  get sampling() {
    return this.request.sampling;
  }

  get prediction() {
    return this.request.prediction;
  }

  get penalizes(): boolean {
    return hasPenalties(this.request.penalties);
  }

  penalized(logits: Float32Array, draft: readonly number[]): Float32Array {
    const p = this.request.penalties;
    if (!hasPenalties(p)) return logits;
    return penalize(logits, p, this.request.promptIds, this.tokens.slice(this.numPromptTokens), draft);
  }

  /** The last committed token: sampled, but not yet in the target's cache. */
  get pending(): number {
    return this.tokens[this.tokens.length - 1];
  }

  /**
   * Commits tokens in order until the output finishes: into the output (text, stop strings, limits), the sequence's
   * tokens and the constraint's matcher. An EOS ends the output without being part of it; under a constraint, so
   * does a stop token with ignore_eos (the grammar has ended). Returns the tokens that
   * entered, the text they released, and their logprobs where the request asked for them.
   */
  commit(ids: number[], logits: Float32Array[]): { emitted: number[]; text: string; logprobs?: GeneratedTokenLogprob[] } {
    const emitted: number[] = [];
    const wanted = this.request.logprobs;
    const logprobs: GeneratedTokenLogprob[] = [];
    let text = '';
    for (let i = 0; i < ids.length && !this.output.done; i++) {
      const before = this.output.tokens.length;
      text += this.output.push(ids[i]);
      if (this.output.tokens.length === before) break;
      this.tokens.push(ids[i]);
      emitted.push(ids[i]);
      if (wanted !== undefined) logprobs.push({ id: ids[i], logprob: logprobOf(logits[i], ids[i]), top: topLogprobs(logits[i], wanted) });
      if (this.constraint && !this.output.done && this.constraint.isStop(ids[i])) text += this.output.finish('stop');
    }
    // Tokens reaching here were sampled or accepted under the masks; a matcher that refuses one fails this request
    // at its next mask, clearly.
    if (this.constraint && emitted.length > 0 && !this.output.done) this.constraint.commit(emitted);
    this.stats.numGeneratedTokens = this.output.tokens.length;
    return { emitted, text, ...(wanted !== undefined ? { logprobs } : {}) };
  }

  /** Hands `event` to the request's listener; a listener that throws harms no other request. */
  emit(event: EngineEvent): void {
    try {
      this.listener(event);
    } catch {
      // the listener's own failure (its client is gone, say): nothing for the engine to do
    }
  }
}
