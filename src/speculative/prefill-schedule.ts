// Which prompt tokens a step prefills (docs/design.md, "The engine"): prompts part-way into their cache first, then
// newcomers while the batch has room. While other sequences decode, at most `prefillChunkTokens` prompt tokens in all
// (chunked prefill: each running stream waits for one chunk's pass a step, not for a whole long prompt's); with
// nothing decoding, up to `maxPrefillTokens`, the first prompt whole.
import type { Sequence } from './sequence.ts';

// Large enough to admit a burst of short prompts in one pass.
const DEFAULT_MAX_PREFILL_TOKENS = 2048;
// While others decode: a chunk's pass costs about a decode step of a 100M-parameter model on a CPU (bench:prefix).
const DEFAULT_PREFILL_CHUNK_TOKENS = 16;

export interface PrefillWork {
  seq: Sequence;
  /** Prompt tokens to feed this step, after those already in its cache. */
  count: number;
}

/** `admitted`: how many of `waiting`, from the front, the work takes in (they join the prefilling). */
export function schedulePrefill(prefilling: readonly Sequence[], waiting: readonly Sequence[], numRunning: number,
  o: { maxBatch: number; maxPrefillTokens?: number; prefillChunkTokens?: number }): { work: PrefillWork[]; admitted: number } {
  const chunked = numRunning > 0;
  let budget = chunked ? o.prefillChunkTokens ?? DEFAULT_PREFILL_CHUNK_TOKENS : o.maxPrefillTokens ?? DEFAULT_MAX_PREFILL_TOKENS;
  const work: PrefillWork[] = [];
  const take = (seq: Sequence) => {
    const left = seq.tokens.length - seq.cache.length;
    const count = chunked || work.length > 0 ? Math.min(left, budget) : left;
    budget -= count;
    work.push({ seq, count });
  };
  for (const seq of prefilling) if (budget > 0 && !seq.cancelled) take(seq);
  let admitted = 0;
  while (budget > 0 && admitted < waiting.length && numRunning + prefilling.length + admitted < o.maxBatch) {
    const next = waiting[admitted];
    if (!chunked && work.length > 0 && next.tokens.length - next.cache.length > budget) break;
    admitted++;
    take(next);
  }
  return { work, admitted };
}
