// Proposers suggest up to k next tokens for a sequence (llama.cpp's common/speculative.h lifecycle:
// begin -> draft -> accept). The engine verifies every proposal with one batched target pass.
import type { SamplingParams } from '../runtime/sampling.ts';
import type { Rng } from '../runtime/rng.ts';
import type { SequenceConstraint } from '../runtime/structured/constraint.ts';
import type { KvCache } from '../runtime/kv-cache.ts';

/** What a proposer may read of a sequence. */
export interface ProposalContext {
  id: string;
  /** Prompt followed by every committed output token (the last one is not yet in the target's cache). */
  tokens: readonly number[];
  numPromptTokens: number;
  sampling: SamplingParams;
  rng: Rng;
  /** Sampled with a seed: its random draws must not depend on how a step runs (alone or in a batch). */
  seededSampling?: boolean;
  /** Predicted Outputs content as token ids, when the request has one. */
  prediction?: readonly number[];
  /** The request's constraint, advanced by `tokens`: drafts must stay inside it. */
  constraint?: SequenceConstraint;
  /** The draft model's cache for a prefix of `tokens` (from the prefix cache) and the tokens it holds: begin() starts
   * from it. */
  draftPrefix?: { cache: KvCache; tokens: number[] };
  /** Logits as the request's logit bias and penalties make them, at the position after `tokens` and `draft`. */
  penalized?(logits: Float32Array, draft: readonly number[]): Float32Array;
  /** The request has a logit bias or penalties (a graph that picks tokens itself cannot apply them). */
  readonly penalizes?: boolean;
}

export interface Proposal {
  tokens: number[];
  /** Draft distributions q_i for each token; absent for point-mass proposers. */
  probs?: Float32Array[];
}

/** A fused step's result: the drafts (with their distributions when sampled), the target's logits at each of the
 * k + 1 positions, and where the pass computed them, the target's distributions under the request's sampling. */
export interface FusedProposal extends Proposal {
  logits: Float32Array[];
  targetProbs?: Float32Array[];
}

export interface Proposer {
  readonly name: string;
  /** Bytes of state the proposer holds (a draft model's KV caches); absent when it holds none worth counting. */
  readonly kvBytes?: number;
  begin(seq: ProposalContext): Promise<void> | void;
  /** Proposals for several sequences at once (a draft model batches them into shared forward passes). */
  propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]>;
  /**
   * For a sequence decoding alone: drafts up to k tokens and runs the target's pass over the pending token (the last
   * of seq.tokens) and the drafts, in one fused session.run (a draft chain fused with the target it was made for).
   * Null where this proposer cannot for this sequence; the engine then drafts and verifies apart. Afterwards
   * `targetCache` holds the pending token and every draft, as a separate target pass would leave it.
   */
  proposeAndVerify?(seq: ProposalContext, k: number, targetCache: KvCache): Promise<FusedProposal | null>;
  /** The target kept `seq.tokens` (already updated); drop any proposer state beyond it. */
  accept(seq: ProposalContext): void;
  /** Before end(): a copy of the sequence's draft cache and the tokens it holds, for the prefix cache; null: none. */
  keep?(seq: ProposalContext): { cache: KvCache; tokens: number[] } | null;
  end(seq: ProposalContext): void;
}
