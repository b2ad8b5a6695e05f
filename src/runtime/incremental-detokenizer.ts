// Streaming text from token ids: decode a short window before and after each new token and emit the difference
// (the scheme of TGI and vLLM). Decoding windows, not single tokens, keeps SentencePiece's leading-space rule and
// byte-fallback sequences right; text ending in U+FFFD (half a UTF-8 character) is held until the next token.
// Most tokens take a fast path: when nothing is held back and the token's piece is complete text on its own
// (tokenizer.streamingPieces), the text it adds is known without decoding (two window decodes a token add up).
import type { StreamingPieces, TextTokenizer } from './tokenizer.ts';

// Tokens of context before the window being decoded: enough for any merge of pieces and multi-byte characters.
const CONTEXT_TOKENS = 5;

export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;
  private readonly fast: StreamingPieces | null;
  /** Some text has been decoded (context included): a decoder's strip of the first space no longer applies. */
  private started: boolean;

  /** `context`: the prompt ids, so that the first generated token decodes as a continuation. `fast: false` decodes
   * windows for every token (tests compare the two). */
  constructor(private readonly tokenizer: TextTokenizer, context: number[] = [], o: { fast?: boolean } = {}) {
    this.ids = [...context];
    this.readOffset = this.ids.length;
    this.prefixOffset = Math.max(0, this.readOffset - CONTEXT_TOKENS);
    this.fast = o.fast === false ? null : tokenizer.streamingPieces();
    this.started = this.fast?.stripsFirstSpace ? context.length > 0 && tokenizer.decode(context).length > 0 : true;
  }

  /** Appends one token; returns the new text it completes (possibly ''). */
  push(id: number): string {
    const text = this.fast?.text[id];
    if (text != null && this.started && this.readOffset === this.ids.length) {
      this.ids.push(id);
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return text;
    }
    const out = this.pushDecoding(id);
    if (out.length > 0) this.started = true;
    return out;
  }

  private pushDecoding(id: number): string {
    this.ids.push(id);
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    if (full.length > prefix.length && !full.endsWith('\uFFFD')) {
      this.prefixOffset = this.readOffset;
      this.readOffset = this.ids.length;
      return full.slice(prefix.length);
    }
    return '';
  }

  /** Text held back at the end (an incomplete character decodes as U+FFFD, as the full decode would). */
  flush(): string {
    const prefix = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tokenizer.decode(this.ids.slice(this.prefixOffset));
    this.prefixOffset = this.readOffset = this.ids.length;
    return full.length > prefix.length ? full.slice(prefix.length) : '';
  }
}
