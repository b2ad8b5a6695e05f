// Prompt lookup decoding (Saxena 2023; vLLM's ngram proposer): find the most recent earlier occurrence of the
// sequence's last n tokens and propose the tokens that followed it. No model, no distribution (a point mass).
import type { Proposal, ProposalContext, Proposer } from './proposer.ts';

/** Tokens following the latest earlier match of the last n (maxN..minN) tokens of `context` in `haystack`. */
export function ngramLookup(haystack: readonly number[], context: readonly number[], k: number, minN = 1, maxN = 3, sameArray = true): number[] {
  for (let n = Math.min(maxN, context.length); n >= minN; n--) {
    const tail = context.slice(context.length - n);
    // In the sequence itself the match must end before the tail does; in a separate text anywhere.
    const lastStart = sameArray ? haystack.length - n - 1 : haystack.length - n;
    for (let start = lastStart; start >= 0; start--) {
      let match = true;
      for (let j = 0; j < n && match; j++) match = haystack[start + j] === tail[j];
      if (match) {
        const follow = haystack.slice(start + n, start + n + k);
        if (follow.length > 0) return follow;
      }
    }
  }
  return [];
}

export class NgramProposer implements Proposer {
  readonly name = 'ngram';
  constructor(private readonly minN = 1, private readonly maxN = 3) {}
  begin(): void {}
  accept(): void {}
  end(): void {}

  async propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]> {
    return requests.map(({ seq, k }) => ({ tokens: k > 0 ? ngramLookup(seq.tokens, seq.tokens, k, this.minN, this.maxN) : [] }));
  }
}
