// One request inside the engine: its target KV cache, committed tokens, output state, RNG, draft-length controller
// and statistics.
import type { KvCache } from '../runtime/kv-cache.ts';
import { GenerationOutput } from '../runtime/generation-output.ts';
import { Xoshiro128, type Rng } from '../runtime/rng.ts';
import { isGreedy } from '../runtime/sampling.ts';
import type { TextTokenizer } from '../runtime/tokenizer.ts';
import { AdaptiveDraftLength, type CostMemory } from './adaptive-draft-length.ts';
import type { EngineListener, GenerationRequest, SequenceStats } from './generation-request.ts';
import type { ProposalContext, Proposer } from './proposer.ts';
import type { Constraint } from '../runtime/structured/constraint.ts';

export class Sequence implements ProposalContext {
  readonly tokens: number[];
  readonly numPromptTokens: number;
  readonly rng: Rng;
  readonly output: GenerationOutput;
  readonly draftLength: AdaptiveDraftLength;
  /** Sampled with a seed: its k must not depend on timing or load (reproducibility). */
  readonly seededSampling: boolean;
  readonly submittedAt = performance.now();
  firstTokenAt = 0;
  lastTokenAt = 0;
  cancelled = false;
  /** Set when the engine, not the client, stopped the sequence: reported to the listener. */
  cancelError?: Error;
  readonly stats: SequenceStats;

  constructor(
    readonly id: string,
    readonly request: GenerationRequest,
    tokenizer: TextTokenizer,
    eosTokenIds: number[],
    readonly cache: KvCache,
    readonly proposer: Proposer | null,
    maxDraftTokens: number,
    adaptive: boolean,
    readonly listener: EngineListener,
    readonly constraint?: Constraint,
    /** Shared with other sequences of the same kind (adaptive-draft-length.ts). */
    costs?: CostMemory,
  ) {
    this.tokens = [...request.promptIds];
    this.numPromptTokens = request.promptIds.length;
    this.rng = new Xoshiro128(request.seed);
    this.output = new GenerationOutput(tokenizer, request.promptIds, {
      maxTokens: request.maxTokens, stop: request.stop, eosTokenIds, ignoreEos: request.ignoreEos,
    });
    this.constraintState = constraint?.start();
    // Timing- or load-driven choices of k would make a seeded sampled request draw its random numbers differently
    // from run to run: those adapt on acceptance alone, and speculate whatever the load, so that the same seed gives
    // the same text.
    this.seededSampling = request.seed !== undefined && !isGreedy(request.sampling);
    this.draftLength = new AdaptiveDraftLength(proposer ? maxDraftTokens : 0, adaptive, { costAware: !this.seededSampling, costs });
    this.stats = {
      numPromptTokens: this.numPromptTokens, numGeneratedTokens: 0, numDrafted: 0, numAccepted: 0,
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

  /** The constraint's state after every committed token. */
  constraintState: unknown = undefined;

  /** The last committed token: sampled, but not yet in the target's cache. */
  get pending(): number {
    return this.tokens[this.tokens.length - 1];
  }
}
