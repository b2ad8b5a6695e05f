// llama2.c tokenizer files (tok512.bin, tokenizer.bin) into Hugging Face tokenizer.json: a SentencePiece-style BPE
// with byte fallback, the same layout as the Llama 2 tokenizer that transformers' LlamaConverter writes.
// run.c's encode: a dummy-prefix space, then repeatedly merge the adjacent pair whose merged piece has the highest
// score. Ranking merges by that score makes Hugging Face's BPE apply them in the same order.

export interface Llama2cVocab {
  maxTokenLength: number;
  pieces: string[];
  scores: number[];
}

const SPIECE_SPACE = '\u2581';
const BYTE_PIECE = /^<0x([0-9A-F]{2})>$/;

export function readLlama2cTokenizer(buf: Uint8Array, expectedVocab: number): Llama2cVocab {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: false });
  if (buf.byteLength < 4) throw new Error('not a llama2.c tokenizer: file too short');
  const maxTokenLength = view.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1024) throw new Error(`not a llama2.c tokenizer: max_token_length ${maxTokenLength}`);
  const pieces: string[] = [];
  const scores: number[] = [];
  let o = 4;
  while (o < buf.byteLength) {
    if (o + 8 > buf.byteLength) throw new Error(`llama2.c tokenizer truncated at token ${pieces.length}`);
    const score = view.getFloat32(o, true);
    const len = view.getInt32(o + 4, true);
    if (len < 0 || len > maxTokenLength + 8 || o + 8 + len > buf.byteLength) {
      throw new Error(`llama2.c tokenizer: bad length ${len} at token ${pieces.length} (truncated or not a tokenizer file)`);
    }
    pieces.push(decoder.decode(buf.subarray(o + 8, o + 8 + len)));
    scores.push(score);
    o += 8 + len;
  }
  if (pieces.length !== expectedVocab) {
    throw new Error(`tokenizer has ${pieces.length} tokens but the model's vocab_size is ${expectedVocab}: they do not belong together`);
  }
  return { maxTokenLength, pieces, scores };
}

/** The piece as SentencePiece spells it: spaces as U+2581, BOS/EOS/UNK by their usual names. */
function spPiece(piece: string, id: number): string {
  if (id === 0) return '<unk>';
  if (id === 1) return '<s>';
  if (id === 2) return '</s>';
  return piece.replaceAll(' ', SPIECE_SPACE);
}

export function llama2cToTokenizerJson(v: Llama2cVocab): Record<string, unknown> {
  const pieces = v.pieces.map(spPiece);
  const vocab: Record<string, number> = {};
  pieces.forEach((p, id) => {
    if (!(p in vocab)) vocab[p] = id;
  });
  const merges: { left: string; right: string; score: number; id: number }[] = [];
  pieces.forEach((p, id) => {
    const chars = Array.from(p);
    if (id < 3 || chars.length < 2 || BYTE_PIECE.test(p)) return;
    for (let split = 1; split < chars.length; split++) {
      const left = chars.slice(0, split).join('');
      const right = chars.slice(split).join('');
      if (left in vocab && right in vocab) merges.push({ left, right, score: v.scores[id], id });
    }
  });
  merges.sort((a, b) => b.score - a.score || a.id - b.id || vocab[a.left] - vocab[b.left]);
  const special = (id: number, content: string) => ({
    id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: {
      type: 'Sequence',
      normalizers: [
        { type: 'Prepend', prepend: SPIECE_SPACE },
        { type: 'Replace', pattern: { String: ' ' }, content: SPIECE_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '<s>', type_id: 1 } }, { Sequence: { id: 'B', type_id: 1 } },
      ],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPIECE_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<unk>',
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => [m.left, m.right]),
    },
  };
}

export function llamaTokenizerConfig(modelMaxLength: number, chatTemplate?: string): Record<string, unknown> {
  return {
    tokenizer_class: 'LlamaTokenizer',
    add_bos_token: true,
    add_eos_token: false,
    bos_token: '<s>',
    eos_token: '</s>',
    unk_token: '<unk>',
    pad_token: null,
    model_max_length: modelMaxLength,
    clean_up_tokenization_spaces: false,
    legacy: true,
    ...(chatTemplate ? { chat_template: chatTemplate } : {}),
  };
}
