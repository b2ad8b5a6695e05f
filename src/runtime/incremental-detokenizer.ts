// Streaming text from token ids: decode a short window before and after each new token and emit the difference
// (the scheme of TGI and vLLM). Decoding windows, not single tokens, keeps SentencePiece's leading-space rule and
// byte-fallback sequences right; text ending in U+FFFD (half a UTF-8 character) is held until the next token.
import type { TextTokenizer } from './tokenizer.ts';

// Tokens of context before the window being decoded: enough for any merge of pieces and multi-byte characters.
const CONTEXT_TOKENS = 5;

export class IncrementalDetokenizer {
  private readonly ids: number[];
  private prefixOffset: number;
  private readOffset: number;

  /** `context`: the prompt ids, so that the first generated token decodes as a continuation. */
  constructor(private readonly tokenizer: TextTokenizer, context: number[] = []) {
    this.ids = [...context];
    this.readOffset = this.ids.length;
    this.prefixOffset = Math.max(0, this.readOffset - CONTEXT_TOKENS);
  }

  /** Appends one token; returns the new text it completes (possibly ''). */
  push(id: number): string {
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
