// The engine's view of a request (the HTTP layer maps OpenAI bodies onto this) and what it reports back.
import type { SamplingParams, TokenLogprob } from '../runtime/sampling.ts';
import type { FinishReason } from '../runtime/generation-output.ts';
import type { GrammarSpec } from '../runtime/structured/grammar-spec.ts';
import type { LogitPenalties } from '../runtime/logit-penalties.ts';

export type { GrammarSpec } from '../runtime/structured/grammar-spec.ts';

export interface GenerationRequest {
  promptIds: number[];
  maxTokens: number;
  sampling: SamplingParams;
  seed?: number;
  stop: string[];
  /** Draft length for this request, fixed (not adapted); 0 disables speculation; undefined: the engine's default
   * (adaptive up to its maximum, if so configured). */
  numSpeculativeTokens?: number;
  /** Predicted Outputs content (token ids): proposes from it instead of the engine's proposer. */
  prediction?: number[];
  /** Report logprobs of chosen tokens, with this many top alternatives. */
  logprobs?: number;
  ignoreEos?: boolean;
  /** Structured output: only tokens the grammar allows are sampled or accepted. */
  constraint?: GrammarSpec;
  /** logit_bias, presence / frequency / repetition penalties (runtime/logit-penalties.ts). */
  penalties?: LogitPenalties;
}


export interface GeneratedTokenLogprob extends TokenLogprob {
  top: TokenLogprob[];
}

export interface SequenceStats {
  numPromptTokens: number;
  /** Prompt tokens whose KV came from the prefix cache (not prefilled). */
  numCachedTokens: number;
  numGeneratedTokens: number;
  /** Tokens proposed (any proposer). */
  numDrafted: number;
  /** Proposed tokens accepted that are part of the output (a stop string or max_tokens may cut accepted ones). */
  numAccepted: number;
  /** The Predicted Output's length in tokens (0 without one). */
  numPredictionTokens: number;
  /** Output tokens that followed the prediction (speculative/prediction-proposer.ts), at the end. */
  numPredictionAccepted: number;
  numTargetPasses: number;
  queueSeconds: number;
  prefillSeconds: number;
  /** From submission to the first token. */
  firstTokenSeconds: number;
  /** From the first token to the last. */
  decodeSeconds: number;
}

export type EngineEvent =
  | { type: 'token'; ids: number[]; text: string; logprobs?: GeneratedTokenLogprob[] }
  | { type: 'done'; finishReason: FinishReason; text: string; tokens: number[]; stats: SequenceStats }
  | { type: 'error'; error: Error };

export type EngineListener = (event: EngineEvent) => void;
