// OpenAI Predicted Outputs as a proposer: the request's `prediction` content is the draft, followed from its start.
// A cursor marks where in the prediction the output has reached; while the output agrees with the prediction the
// cursor moves along and the next k prediction tokens are proposed (the first proposal, after the prefill's token,
// continues the prediction's head). Where the output departs from it (an edit), the cursor re-synchronises on the
// output's last tokens at their earliest occurrence after it (then anywhere): predictions often repeat lines, and
// the earliest keeps the order. The cost per step is the new tokens, plus a bounded search after an edit.
import type { Proposal, ProposalContext, Proposer } from './proposer.ts';

/** Tokens of the output's tail matched when re-synchronising (longest first). */
const MAX_ANCHOR = 8;
const MIN_ANCHOR = 2;

/** A position in a prediction, moved along an output as it grows. */
export class PredictionCursor {
  /** Output tokens walked so far. */
  private walked = 0;
  /** Index in the prediction of the token expected next; -1: lost until the output's tail is found again. */
  at = 0;
  /** Output tokens found in the prediction along the walk (OpenAI's accepted prediction tokens): those that were its
   * next token, and those of a tail it re-synchronised on. */
  matched = 0;
  /** Where the walk got lost (the first output token off the prediction). */
  private lostAt = 0;

  constructor(private readonly prediction: readonly number[]) {}

  /** Walks the tokens of `output` not walked yet. */
  walk(output: readonly number[]): void {
    for (; this.walked < output.length; this.walked++) {
      const token = output[this.walked];
      if (this.at >= 0 && this.prediction[this.at] === token) {
        this.at++;
        this.matched++;
      } else {
        if (this.at >= 0) this.lostAt = this.walked;
        const tail = output.slice(Math.max(0, this.walked + 1 - MAX_ANCHOR), this.walked + 1);
        const found = resync(this.prediction, tail, this.at);
        // The anchor's tokens walked while lost were the prediction's after all.
        if (found) this.matched += Math.min(found.anchor, this.walked - this.lostAt + 1);
        this.at = found ? found.at : -1;
      }
    }
  }

  next(k: number): number[] {
    return this.at >= 0 ? this.prediction.slice(this.at, this.at + k) : [];
  }
}

/** How many tokens of `output` the prediction had next where they came (the cursor's walk). */
export function predictionMatches(prediction: readonly number[], output: readonly number[]): number {
  const cursor = new PredictionCursor(prediction);
  cursor.walk(output);
  return Math.min(cursor.matched, prediction.length);
}

/** The earliest start s >= from with prediction[s..s+n) equal to `tail`; -1 if none. */
function find(prediction: readonly number[], tail: readonly number[], from: number): number {
  const n = tail.length;
  for (let s = Math.max(0, from); s + n <= prediction.length; s++) {
    let j = 0;
    while (j < n && prediction[s + j] === tail[j]) j++;
    if (j === n) return s;
  }
  return -1;
}

/** Where the prediction continues after `output` (`at`), and the length of the tail it was found by; null where it
 * does not. `hint`: the cursor before the departure, searched from first. */
function resync(prediction: readonly number[], output: readonly number[], hint: number): { at: number; anchor: number } | null {
  for (let n = Math.min(MAX_ANCHOR, output.length); n >= Math.min(MIN_ANCHOR, output.length); n--) {
    const tail = output.slice(output.length - n);
    for (const from of hint > 0 ? [hint - n, 0] : [0]) {
      const s = find(prediction, tail, from);
      if (s >= 0) return { at: s + n, anchor: n };
    }
  }
  return null;
}

export class PredictionProposer implements Proposer {
  readonly name = 'prediction';
  private readonly cursors = new Map<string, PredictionCursor>();

  begin(seq: ProposalContext): void {
    if (seq.prediction?.length) this.cursors.set(seq.id, new PredictionCursor(seq.prediction));
  }

  accept(): void {}

  end(seq: ProposalContext): void {
    this.cursors.delete(seq.id);
  }

  async propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]> {
    return requests.map(({ seq, k }) => {
      const cursor = this.cursors.get(seq.id);
      if (!cursor || k <= 0) return { tokens: [] };
      cursor.walk(seq.tokens.slice(seq.numPromptTokens));
      return { tokens: cursor.next(k) };
    });
  }
}
