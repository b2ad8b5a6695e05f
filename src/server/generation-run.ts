// Submits every choice of one API request to the engine and gathers them; all or nothing on admission (a full
// queue refuses the whole request with 429), one cancel for a client that goes away.
import type { EngineHandle } from '../speculative/engine.ts';
import type { EngineEvent, GeneratedTokenLogprob, GenerationRequest, SequenceStats } from '../speculative/generation-request.ts';
import type { FinishReason } from '../runtime/generation-output.ts';
import { ApiError, errors } from './errors.ts';
import { EngineClosedError } from '../speculative/engine-api.ts';

export interface ChoiceOutcome {
  index: number;
  text: string;
  tokens: number[];
  finishReason: FinishReason;
  logprobs: GeneratedTokenLogprob[];
  stats: SequenceStats;
}

export type TokenEvent = Extract<EngineEvent, { type: 'token' }>;

export class GenerationRun {
  private readonly ids: string[] = [];
  readonly done: Promise<ChoiceOutcome[]>;
  private finished = false;

  constructor(
    private readonly engine: EngineHandle,
    requests: GenerationRequest[],
    onToken?: (index: number, event: TokenEvent) => void,
    onChoiceDone?: (outcome: ChoiceOutcome) => void,
  ) {
    const outcomes: Promise<ChoiceOutcome>[] = [];
    for (let index = 0; index < requests.length; index++) {
      const logprobs: GeneratedTokenLogprob[] = [];
      let resolve!: (o: ChoiceOutcome) => void;
      let reject!: (e: Error) => void;
      outcomes.push(new Promise((res, rej) => ((resolve = res), (reject = rej))));
      const id = engine.submit(requests[index], (event) => {
        if (event.type === 'token') {
          if (event.logprobs) logprobs.push(...event.logprobs);
          onToken?.(index, event);
        } else if (event.type === 'done') {
          const outcome = { index, text: event.text, tokens: event.tokens, finishReason: event.finishReason, logprobs, stats: event.stats };
          onChoiceDone?.(outcome);
          resolve(outcome);
        } else {
          // An engine that stopped says so in its own terms (503, retry), as does one closed under the request (503:
          // cut short, retry elsewhere); anything else is the server's fault (500).
          const error = event.error;
          reject(error instanceof ApiError ? error : error instanceof EngineClosedError ? errors.closedMidway() : errors.engineFailed(error.message));
        }
      }, { streaming: onToken !== undefined });
      if (id === null) {
        this.cancel();
        throw errors.queueFull();
      }
      this.ids.push(id);
    }
    this.done = Promise.all(outcomes).then(
      (o) => ((this.finished = true), o),
      (err) => {
        this.cancel();
        throw err;
      },
    );
    this.done.catch(() => {}); // observed by the route; avoid an unhandled rejection if it has gone already
  }

  /** Stops every choice (client disconnect); their KV caches are freed at the next engine step. */
  cancel(): void {
    if (this.finished) return;
    for (const id of this.ids) this.engine.cancel(id);
  }
}
