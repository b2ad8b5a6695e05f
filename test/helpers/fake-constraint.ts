// Test-only constraints for engine tests that need a grammar's effect without a grammar: a rule over positions and
// tokens, and a provider that hands it out. The real one is runtime/structured/grammar-service.ts (XGrammar).
import type { ConstraintProvider, SequenceConstraint } from '../../src/runtime/structured/constraint.ts';
import type { GrammarSpec } from '../../src/runtime/structured/grammar-spec.ts';
import { maskOf } from '../../src/runtime/structured/token-bitmask.ts';

/** Allows token t at output position p where `allowed(p, t)`; `onCommit` sees the committed count (and may throw). */
export class RuleConstraint implements SequenceConstraint {
  readonly ready = Promise.resolve();
  committed = 0;

  constructor(private readonly vocabSize: number, private readonly allowed: (position: number, token: number) => boolean,
    private readonly onCommit?: (committed: number) => void) {}

  async masksAlong(draft: number[]): Promise<{ masks: Int32Array[]; kept: number }> {
    const masks: Int32Array[] = [];
    for (let j = 0; ; j++) {
      const position = this.committed + j;
      masks.push(maskOf(Array.from({ length: this.vocabSize }, (_, t) => t).filter((t) => this.allowed(position, t)), this.vocabSize));
      if (j === draft.length || !this.allowed(position, draft[j])) return { masks, kept: j };
    }
  }

  commit(tokens: number[]): void {
    this.committed += tokens.length;
    this.onCommit?.(this.committed);
  }

  isStop(): boolean {
    return false;
  }

  close(): void {}
}

export function ruleConstraints(open: (spec: GrammarSpec) => SequenceConstraint): ConstraintProvider {
  return { prepare: async () => {}, open, close: async () => {} };
}
