// A decoding constraint: the tokens allowed next from a state, and the state after a token. States are immutable, so
// keeping an old one is the rollback that speculative decoding needs. JsonConstraint (token-masker.ts) implements it.
export interface Constraint<S = unknown> {
  start(): S;
  /** 1 for every vocabulary token allowed next. */
  allowed(state: S): Uint8Array;
  /** The state after `token`, or null when the token is not allowed. */
  advance(state: S, token: number): S | null;
  /** Nothing but the end of the sequence may follow. */
  isComplete(state: S): boolean;
}
