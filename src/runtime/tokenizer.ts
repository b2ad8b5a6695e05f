// tokenizer.json through @huggingface/tokenizers, with BOS/EOS from the folder's config files.
import { existsSync, readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';

export class TextTokenizer {
  private constructor(
    private readonly tokenizer: Tokenizer,
    readonly config: Record<string, unknown>,
    /** Identifies the vocabulary (token strings and ids): drafts must match their target's. */
    readonly vocabFingerprint: string,
    readonly vocabSize: number,
    private readonly pieces: string[],
    private readonly specialIds: Set<number>,
    private readonly byteLevel: boolean,
    private readonly addedIds: Set<number>,
    private readonly decoderJson: unknown,
  ) {}

  private bytesCache: (Uint8Array | null)[] | null = null;
  private streamingCache: StreamingPieces | null | undefined;

  /**
   * For streaming detokenization without decoding windows: each token's text where appending it is exactly what a
   * full decode would append (a SentencePiece or byte-level piece that is complete UTF-8 on its own; null for
   * special, added and byte-fallback tokens). Null altogether unless the decoder is one of those two known kinds
   * and clean_up_tokenization_spaces is off. `stripsFirstSpace`: the decoder strips one leading space of the text.
   */
  streamingPieces(): StreamingPieces | null {
    if (this.streamingCache !== undefined) return this.streamingCache;
    const decoder = JSON.stringify(this.decoderJson ?? null);
    const sentencePiece = decoder === JSON.stringify(LLAMA_DECODER);
    const byteLevel = this.byteLevel && /^\{"type":"ByteLevel"[^{}]*\}$/.test(decoder);
    if ((!sentencePiece && !byteLevel) || this.config.clean_up_tokenization_spaces !== false) return (this.streamingCache = null);
    const utf8 = new TextDecoder('utf-8', { fatal: true });
    const bytes = this.tokenBytes();
    const text = this.pieces.map((piece, id) => {
      const b = bytes[id];
      if (!b || this.addedIds.has(id) || (sentencePiece && /^<0x[0-9A-Fa-f]{2}>$/.test(piece))) return null;
      try {
        return utf8.decode(b);
      } catch {
        return null; // part of a multi-byte character
      }
    });
    return (this.streamingCache = { text, stripsFirstSpace: sentencePiece });
  }

  /**
   * The bytes each token contributes to the text (null for special tokens), for grammar masks: SentencePiece pieces
   * ('\u2581' is a space, <0xXX> a raw byte) or GPT-2 byte-level pieces (one character per byte).
   */
  tokenBytes(): (Uint8Array | null)[] {
    if (this.bytesCache) return this.bytesCache;
    const encoder = new TextEncoder();
    const byteOf = this.byteLevel ? byteLevelDecoder() : null;
    this.bytesCache = this.pieces.map((piece, id) => {
      if (piece === undefined || this.specialIds.has(id)) return null;
      if (byteOf) {
        const bytes = Array.from(piece, (ch) => byteOf.get(ch));
        return bytes.every((b) => b !== undefined) ? Uint8Array.from(bytes as number[]) : encoder.encode(piece);
      }
      const hex = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
      if (hex) return Uint8Array.of(parseInt(hex[1], 16));
      return encoder.encode(piece.replaceAll('\u2581', ' '));
    });
    return this.bytesCache;
  }

  /**
   * The vocabulary as XGrammar's TokenizerInfo takes it: each token's piece as the tokenizer stores it (special tokens
   * as empty strings, which XGrammar never allows as text), and how pieces spell bytes: SentencePiece's '\u2581' and
   * <0xXX> (byte_fallback), GPT-2's byte characters (byte_level), or the text itself (raw, given decoded).
   */
  grammarVocabulary(): { vocab: string[]; vocabType: 'byte_fallback' | 'byte_level' | 'raw'; addPrefixSpace: boolean } {
    const decoder = JSON.stringify(this.decoderJson ?? null);
    const vocabType = this.byteLevel ? 'byte_level' : decoder.includes('"ByteFallback"') ? 'byte_fallback' : 'raw';
    const utf8 = new TextDecoder();
    const bytes = this.tokenBytes();
    const vocab = Array.from({ length: this.vocabSize }, (_, id) => {
      const piece = this.pieces[id];
      if (piece === undefined || this.specialIds.has(id)) return '';
      return vocabType === 'raw' ? utf8.decode(bytes[id] ?? new Uint8Array()) : piece;
    });
    return { vocab, vocabType, addPrefixSpace: decoder === JSON.stringify(LLAMA_DECODER) };
  }

  static load(dir: string): TextTokenizer {
    const jsonPath = join(dir, 'tokenizer.json');
    if (!existsSync(jsonPath)) throw new Error(`${dir} has no tokenizer.json`);
    const json = JSON.parse(readFileSync(jsonPath, 'utf8'));
    const configPath = join(dir, 'tokenizer_config.json');
    const config = existsSync(configPath) ? JSON.parse(readFileSync(configPath, 'utf8')) : {};
    const tokenizer = new Tokenizer(json, config);
    const vocab = [...tokenizer.get_vocab(true).entries()].sort((a, b) => a[1] - b[1]);
    const fingerprint = createHash('sha256').update(JSON.stringify(vocab)).digest('hex').slice(0, 16);
    const pieces: string[] = [];
    for (const [piece, id] of vocab) pieces[id] = piece;
    const specialIds = new Set<number>((json.added_tokens ?? []).filter((t: { special?: boolean }) => t.special).map((t: { id: number }) => t.id));
    const byteLevel = JSON.stringify(json.decoder ?? {}).includes('"ByteLevel"');
    const addedIds = new Set<number>((json.added_tokens ?? []).map((t: { id: number }) => t.id));
    return new TextTokenizer(tokenizer, config, fingerprint, vocab.length, pieces, specialIds, byteLevel, addedIds, json.decoder);
  }

  get chatTemplate(): string | undefined {
    const t = this.config.chat_template;
    return typeof t === 'string' ? t : undefined;
  }

  tokenString(name: 'bos_token' | 'eos_token'): string | undefined {
    const v = this.config[name];
    if (typeof v === 'string') return v;
    if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
    return undefined;
  }

  encode(text: string, addSpecialTokens = true): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: addSpecialTokens }).ids;
  }

  decode(ids: number[], skipSpecialTokens = true): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: skipSpecialTokens });
  }

  /** The vocabulary piece of a token id (e.g. "▁upon", "<0x0A>"). */
  idToToken(id: number): string | undefined {
    return this.pieces[id];
  }
}

export interface StreamingPieces {
  text: (string | null)[];
  stripsFirstSpace: boolean;
}

// The decoder of Llama / SentencePiece tokenizer.json files (and of the forge's).
const LLAMA_DECODER = {
  type: 'Sequence',
  decoders: [
    { type: 'Replace', pattern: { String: '\u2581' }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    { type: 'Strip', content: ' ', start: 1, stop: 0 },
  ],
};

/** GPT-2's bytes_to_unicode, inverted: the printable character that stands for each byte -> the byte. */
function byteLevelDecoder(): Map<string, number> {
  const printable: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) printable.push(b);
  for (let b = 0xa1; b <= 0xac; b++) printable.push(b);
  for (let b = 0xae; b <= 0xff; b++) printable.push(b);
  const map = new Map<string, number>();
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    const code = printable.includes(b) ? b : 256 + extra++;
    map.set(String.fromCodePoint(code), b);
  }
  return map;
}
