// A decoding constraint as the engine sees it: one per constrained sequence, a grammar matcher advanced by the
// committed tokens. Speculation asks for the masks along a draft without committing it (the matcher advances through
// the draft and rolls back), so every drafted and verified position is masked as if the tokens before it were
// committed. GrammarService (grammar-service.ts) implements it with XGrammar in worker threads.
import type { GrammarSpec } from './grammar-spec.ts';

export interface SequenceConstraint {
  /** Settles when the grammar is compiled and the matcher open; rejects with the compile's error. */
  readonly ready: Promise<void>;
  /**
   * The masks along `draft` after the committed tokens: masks[j] holds the tokens allowed at draft position j, and
   * masks[kept] those after the last kept token. `kept`: how many leading draft tokens the grammar allows (a stop
   * token ends the run: kept after it, and only stop tokens after it).
   */
  masksAlong(draft: number[]): Promise<{ masks: Int32Array[]; kept: number }>;
  /** Commits tokens, each allowed by its position's mask. */
  commit(tokens: number[]): void;
  /** The token ends the document (a stop token the grammar accepts). */
  isStop(token: number): boolean;
  close(): void;
}

export interface ConstraintProvider {
  /** Compiles `spec` (cached by its source) without blocking the caller's thread; rejects with a GrammarError when the
   * grammar can never compile. */
  prepare(spec: GrammarSpec): Promise<void>;
  /** A matcher for one sequence (compiling first where needed: see `ready`). */
  open(spec: GrammarSpec): SequenceConstraint;
  close(): Promise<void>;
}
