// What a sequence has produced so far, and when it is done: EOS, max_tokens, or a stop string (which may span
// tokens). Plain generation and the speculative engine both push accepted tokens through this one class.
import type { TextTokenizer } from './tokenizer.ts';
import { IncrementalDetokenizer } from './incremental-detokenizer.ts';
import { StopStrings } from './stop-strings.ts';

export type FinishReason = 'stop' | 'length';

export interface OutputLimits {
  maxTokens: number;
  stop: string[];
  eosTokenIds: number[];
  ignoreEos?: boolean;
}

export class GenerationOutput {
  readonly tokens: number[] = [];
  text = '';
  finishReason: FinishReason | null = null;
  private readonly detokenizer: IncrementalDetokenizer;
  private readonly stops: StopStrings;

  constructor(tokenizer: TextTokenizer, promptIds: number[], private readonly limits: OutputLimits) {
    this.detokenizer = new IncrementalDetokenizer(tokenizer, promptIds);
    this.stops = new StopStrings(limits.stop);
  }

  get done(): boolean {
    return this.finishReason !== null;
  }

  /** Ends the output now (a grammar that admits nothing more); releases held text. */
  finish(reason: FinishReason): string {
    if (this.done) return '';
    this.finishReason = reason;
    const delta = this.release();
    this.text += delta;
    return delta;
  }

  /** What the detokenizer and the stop-string matcher still hold, at the end. */
  private release(): string {
    const tail = this.stops.push(this.detokenizer.flush());
    return tail.text + (tail.stopped ? '' : this.stops.flush());
  }

  /** Takes one generated token; returns the text it releases (possibly ''). */
  push(id: number): string {
    if (this.done) throw new Error('push after the sequence finished');
    let delta = '';
    if (!this.limits.ignoreEos && this.limits.eosTokenIds.includes(id)) {
      this.finishReason = 'stop';
    } else {
      this.tokens.push(id);
      const r = this.stops.push(this.detokenizer.push(id));
      delta = r.text;
      if (r.stopped) {
        this.finishReason = 'stop';
        this.text += delta;
        return delta; // a stop string cut the text: nothing held is released
      }
      if (this.tokens.length >= this.limits.maxTokens) this.finishReason = 'length';
    }
    if (this.done) delta += this.release(); // EOS or length
    this.text += delta;
    return delta;
  }
}
