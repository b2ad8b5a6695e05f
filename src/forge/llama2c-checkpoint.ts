// llama2.c checkpoints (the tinyllamas family) in the legacy format: 7 int32 header, then float32 weights.
// https://github.com/karpathy/llama2.c run.c: read_checkpoint / memory_map_weights give the order read here.
import type { LlamaConfig } from './llama-config.ts';
import { validateLlamaConfig } from './llama-config.ts';
import { transpose, type LlamaWeights } from './llama-weights.ts';

const HEADER_BYTES = 7 * 4;
// llama2.c's newer export versions start with this magic ("ak42"); only the legacy layout is read here.
const LLAMA2C_V1_MAGIC = 0x616b3432;

export interface Llama2cCheckpoint {
  config: LlamaConfig;
  weights: LlamaWeights;
}

export function readLlama2cCheckpoint(buf: Uint8Array, onLayer?: (done: number, total: number) => void): Llama2cCheckpoint {
  if (buf.byteLength < HEADER_BYTES) throw new Error(`not a llama2.c checkpoint: ${buf.byteLength} bytes is shorter than the header`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const first = view.getUint32(0, true);
  if (first === LLAMA2C_V1_MAGIC) {
    throw new Error('llama2.c checkpoint in the versioned "ak42" export format; only the legacy format is supported (export.py --version 0)');
  }
  const [dim, hiddenDim, numLayers, numHeads, numKvHeads, rawVocab, seqLen] = Array.from({ length: 7 }, (_, i) => view.getInt32(i * 4, true));
  const vocab = Math.abs(rawVocab);
  const plausible = (v: number, max: number) => Number.isInteger(v) && v > 0 && v <= max;
  if (!plausible(dim, 1 << 16) || !plausible(hiddenDim, 1 << 18) || !plausible(numLayers, 1024) || !plausible(numHeads, 1024) ||
    !plausible(numKvHeads, 1024) || !plausible(vocab, 1 << 22) || !plausible(seqLen, 1 << 20) || dim % numHeads !== 0) {
    throw new Error(`not a llama2.c checkpoint: implausible header dim=${dim} hidden_dim=${hiddenDim} n_layers=${numLayers} ` +
      `n_heads=${numHeads} n_kv_heads=${numKvHeads} vocab_size=${rawVocab} seq_len=${seqLen}`);
  }
  const shared = rawVocab > 0;
  const hs = dim / numHeads;
  const kvDim = numKvHeads * hs;
  const L = numLayers;
  const floats = vocab * dim + L * dim * 2 + L * dim * dim * 2 + L * dim * kvDim * 2 + L * dim * hiddenDim * 3 + dim +
    seqLen * hs + (shared ? 0 : vocab * dim);
  const expectedBytes = HEADER_BYTES + floats * 4;
  if (buf.byteLength !== expectedBytes) {
    throw new Error(`llama2.c checkpoint size ${buf.byteLength} bytes does not match its header (expected ${expectedBytes}): ` +
      (buf.byteLength < expectedBytes ? 'the file is truncated' : 'trailing data or a different format'));
  }
  const config = validateLlamaConfig({
    hiddenSize: dim, intermediateSize: hiddenDim, numLayers, numHeads, numKvHeads, headDim: hs, vocabSize: vocab,
    maxPositionEmbeddings: seqLen, rmsNormEps: 1e-5, ropeTheta: 10000, tieWordEmbeddings: shared, bosTokenId: 1, eosTokenId: 2,
  });

  // Copy into a fresh, aligned buffer (a Node Buffer may be a view into a larger pool, at any byte offset).
  const all = new Float32Array(floats);
  new Uint8Array(all.buffer).set(buf.subarray(HEADER_BYTES));
  let offset = 0;
  const take = (n: number) => all.subarray(offset, (offset += n));
  const perLayer = (n: number) => Array.from({ length: L }, () => take(n));
  const embed = take(vocab * dim).slice();
  const rmsAtt = perLayer(dim);
  const wq = perLayer(dim * dim);
  const wk = perLayer(kvDim * dim);
  const wv = perLayer(kvDim * dim);
  const wo = perLayer(dim * dim);
  const rmsFfn = perLayer(dim);
  const w1 = perLayer(hiddenDim * dim);
  const w2 = perLayer(dim * hiddenDim);
  const w3 = perLayer(hiddenDim * dim);
  const finalNorm = take(dim).slice();
  take(seqLen * hs); // freq_cis_real and freq_cis_imag (unused: RoPE is recomputed from theta)
  const wcls = shared ? embed : take(vocab * dim);

  const layers = [];
  for (let l = 0; l < L; l++) {
    layers.push({
      inputNorm: rmsAtt[l].slice(),
      q: transpose(pairsToHalves(wq[l], numHeads, hs, dim), dim, dim),
      k: transpose(pairsToHalves(wk[l], numKvHeads, hs, dim), kvDim, dim),
      v: transpose(wv[l], kvDim, dim),
      o: transpose(wo[l], dim, dim),
      postNorm: rmsFfn[l].slice(),
      gate: transpose(w1[l], hiddenDim, dim),
      up: transpose(w3[l], hiddenDim, dim),
      down: transpose(w2[l], dim, hiddenDim),
    });
    onLayer?.(l + 1, L);
  }
  return { config, weights: { embed, layers, finalNorm, lmHead: transpose(wcls, vocab, dim) } };
}

/**
 * llama2.c rotates adjacent pairs (x[2i], x[2i+1]); Hugging Face rotates halves (x[i], x[i+hs/2]). Reordering the
 * output rows of W_q and W_k within each head (row 2i -> i, row 2i+1 -> i + hs/2) makes the rotate-half graph compute
 * the same attention scores: q and k are permuted alike, so every dot product is unchanged. This is the inverse of
 * the permutation in transformers' convert_llama_weights_to_hf.py.
 */
export function pairsToHalves(w: Float32Array, heads: number, hs: number, inDim: number): Float32Array {
  const out = new Float32Array(w.length);
  const half = hs / 2;
  for (let h = 0; h < heads; h++) {
    for (let r = 0; r < hs; r++) {
      const src = r < half ? 2 * r : 2 * (r - half) + 1;
      out.set(w.subarray((h * hs + src) * inDim, (h * hs + src + 1) * inDim), (h * hs + r) * inDim);
    }
  }
  return out;
}
