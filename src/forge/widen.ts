// Function-preserving widening (Net2Net-style zero padding): a model that computes the same function as a small trained
// one at the cost of a large one. Speed work needs a target whose step costs what a real model's does and a draft with
// a known, real acceptance against it; widening stories260K gives both (its distilled draft keeps its acceptance).
//
// - hidden size d -> D: every matrix keeps the original in its top-left block, every other entry is zero, and the
//   embedding is zero-padded, so the residual stream is the original's followed by zeros;
// - RMSNorm gains are multiplied by sqrt(d/D) (extra entries zero) and eps by d/D: the mean square over D entries of
//   which d - D are zero is (d/D) times the original's, so the normalised output is the original's exactly;
// - head size is kept, so heads grow with D and KV heads in the same ratio (the GQA group is unchanged, query head h
//   still reads KV head h / group) and RoPE is unchanged; extra heads and FFN units have zero weights and add zero;
// - extra layers are all zero: their attention and FFN add zero to the residual stream, an identity.
import type { LlamaConfig } from './llama-config.ts';
import { validateLlamaConfig } from './llama-config.ts';
import type { LlamaLayerWeights, LlamaWeights } from './llama-weights.ts';

export interface WidenShape {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
}

/** wide-100m: ~78M parameters (stories260K's vocabulary); wide-1b: ~1.1B, for the GPU. */
export const widenPresets: Record<string, WidenShape> = {
  'wide-100m': { hiddenSize: 768, intermediateSize: 2048, numLayers: 12 },
  'wide-1b': { hiddenSize: 2048, intermediateSize: 5632, numLayers: 22 },
};

export function widenedConfig(c: LlamaConfig, to: WidenShape): LlamaConfig {
  const { hiddenSize: D, intermediateSize: I, numLayers: L } = to;
  const fail = (why: string) => { throw new Error(`widen: ${why}`); };
  if (!Number.isInteger(D) || D < c.hiddenSize) fail(`hidden size ${D} must be an integer >= the source's ${c.hiddenSize}`);
  if (!Number.isInteger(I) || I < c.intermediateSize) fail(`intermediate size ${I} must be an integer >= the source's ${c.intermediateSize}`);
  if (!Number.isInteger(L) || L < c.numLayers) fail(`layers ${L} must be an integer >= the source's ${c.numLayers}`);
  if (c.numHeads * c.headDim !== c.hiddenSize) fail('the source has num_heads * head_dim != hidden_size, which widening does not handle');
  if (D % c.headDim !== 0) fail(`hidden size ${D} must be a multiple of the head size ${c.headDim} (head size is kept)`);
  const heads = D / c.headDim;
  const group = c.numHeads / c.numKvHeads;
  if (heads % group !== 0) fail(`hidden size ${D} gives ${heads} heads, not a multiple of the source's GQA group ${group}`);
  return validateLlamaConfig({
    ...c, hiddenSize: D, intermediateSize: I, numLayers: L, numHeads: heads, numKvHeads: heads / group,
    rmsNormEps: c.rmsNormEps * (c.hiddenSize / D),
  });
}

/** a [rows, cols] row-major in the top-left corner of a zero [R, C] matrix. */
export function padMatrix(a: Float32Array, rows: number, cols: number, R: number, C: number): Float32Array {
  if (a.length !== rows * cols) throw new Error(`padMatrix: ${a.length} values, expected ${rows}x${cols}`);
  const out = new Float32Array(R * C);
  for (let r = 0; r < rows; r++) out.set(a.subarray(r * cols, (r + 1) * cols), r * C);
  return out;
}

function scaledGain(g: Float32Array, D: number, scale: number): Float32Array {
  const out = new Float32Array(D);
  for (let i = 0; i < g.length; i++) out[i] = g[i] * scale;
  return out;
}

export function widenWeights(c: LlamaConfig, w: LlamaWeights, to: WidenShape): { config: LlamaConfig; weights: LlamaWeights } {
  const n = widenedConfig(c, to);
  const d = c.hiddenSize, D = n.hiddenSize, i = c.intermediateSize, I = n.intermediateSize;
  const q = c.numHeads * c.headDim, Q = n.numHeads * n.headDim;
  const kv = c.numKvHeads * c.headDim, KV = n.numKvHeads * n.headDim;
  const gainScale = Math.sqrt(d / D);
  const layer = (l: LlamaLayerWeights): LlamaLayerWeights => ({
    inputNorm: scaledGain(l.inputNorm, D, gainScale),
    q: padMatrix(l.q, d, q, D, Q),
    k: padMatrix(l.k, d, kv, D, KV),
    v: padMatrix(l.v, d, kv, D, KV),
    o: padMatrix(l.o, q, d, Q, D),
    postNorm: scaledGain(l.postNorm, D, gainScale),
    gate: padMatrix(l.gate, d, i, D, I),
    up: padMatrix(l.up, d, i, D, I),
    down: padMatrix(l.down, i, d, I, D),
  });
  const zeroLayer = (): LlamaLayerWeights => ({
    inputNorm: new Float32Array(D), q: new Float32Array(D * Q), k: new Float32Array(D * KV), v: new Float32Array(D * KV),
    o: new Float32Array(Q * D), postNorm: new Float32Array(D), gate: new Float32Array(D * I), up: new Float32Array(D * I),
    down: new Float32Array(I * D),
  });
  const layers = [...w.layers.map(layer), ...Array.from({ length: n.numLayers - c.numLayers }, zeroLayer)];
  return {
    config: n,
    weights: {
      embed: padMatrix(w.embed, c.vocabSize, d, c.vocabSize, D),
      layers,
      finalNorm: scaledGain(w.finalNorm, D, gainScale),
      lmHead: padMatrix(w.lmHead, d, c.vocabSize, D, c.vocabSize),
    },
  };
}
