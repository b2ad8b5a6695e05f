// OpenAI Predicted Outputs as a proposer: the request's `prediction` content is the draft. At the start the
// prediction's head is proposed; later, the output's last tokens are located in the prediction and what follows
// them there is proposed (so edits that skip or insert text re-synchronise).
import { ngramLookup } from './ngram-proposer.ts';
import type { Proposal, ProposalContext, Proposer } from './proposer.ts';

export class PredictionProposer implements Proposer {
  readonly name = 'prediction';
  begin(): void {}
  accept(): void {}
  end(): void {}

  async propose(requests: { seq: ProposalContext; k: number }[]): Promise<Proposal[]> {
    return requests.map(({ seq, k }) => {
      const prediction = seq.prediction ?? [];
      if (k <= 0 || prediction.length === 0) return { tokens: [] };
      const output = seq.tokens.slice(seq.numPromptTokens);
      if (output.length === 0) return { tokens: prediction.slice(0, k) };
      return { tokens: ngramLookup(prediction, output, k, 1, 8, false) };
    });
  }
}
