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
  ) {}

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
    return new TextTokenizer(tokenizer, config, fingerprint, vocab.length, pieces);
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
