// Deterministic seeded weights of any size, for tests and benchmarks of the cost side (the text is noise).
import type { LlamaConfig } from './llama-config.ts';
import { layerShapes, transpose, type LlamaLayerWeights, type LlamaWeights } from './llama-weights.ts';

/** splitmix32 + Box-Muller: tiny, fast, and identical on every platform for a given seed. */
function normalSource(seed: number): () => number {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x9e3779b9) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 4294967296;
  };
  return () => Math.sqrt(-2 * Math.log(1 - next())) * Math.cos(2 * Math.PI * next());
}

// Transformers' LlamaConfig initializer_range: N(0, 0.02) for projections, ones for norms.
const INIT_STD = 0.02;

export function randomWeights(c: LlamaConfig, seed: number): LlamaWeights {
  const normal = normalSource(seed);
  const gaussian = (n: number, std = INIT_STD) => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = normal() * std;
    return a;
  };
  // Norm weights near one (not exactly) so that a wrong norm weight shows up in reference comparisons.
  const norm = (n: number) => Float32Array.from(gaussian(n, 0.1), (v) => 1 + v);
  const shapes = layerShapes(c);
  const layers = Array.from({ length: c.numLayers }, () => {
    const layer = {} as LlamaLayerWeights;
    for (const [key, dims] of Object.entries(shapes)) {
      const size = dims.reduce((a, b) => a * b, 1);
      layer[key as keyof LlamaLayerWeights] = dims.length === 1 ? norm(size) : gaussian(size);
    }
    return layer;
  });
  // Embeddings at std 1 (not 0.02) so the random model's logits are far from uniform and argmax is decisive.
  const embed = gaussian(c.vocabSize * c.hiddenSize, 1);
  const lmHead = c.tieWordEmbeddings ? transpose(embed, c.vocabSize, c.hiddenSize) : gaussian(c.hiddenSize * c.vocabSize);
  return { embed, layers, finalNorm: norm(c.hiddenSize), lmHead };
}

export interface RandomPreset {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  vocabSize: number;
  maxPositionEmbeddings: number;
}

/** tiny: tests (builds in milliseconds); bench-20m / bench-100m: the cost side of performance work. */
export const randomPresets: Record<string, RandomPreset> = {
  tiny: { hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 2, vocabSize: 512, maxPositionEmbeddings: 256 },
  'bench-20m': { hiddenSize: 384, intermediateSize: 1024, numLayers: 6, numHeads: 6, numKvHeads: 2, vocabSize: 32000, maxPositionEmbeddings: 1024 },
  'bench-100m': { hiddenSize: 768, intermediateSize: 2048, numLayers: 12, numHeads: 12, numKvHeads: 4, vocabSize: 32000, maxPositionEmbeddings: 1024 },
};

export function parameterCount(c: LlamaConfig): number {
  const perLayer = Object.values(layerShapes(c)).reduce((sum, dims) => sum + dims.reduce((a, b) => a * b, 1), 0);
  return c.vocabSize * c.hiddenSize * (c.tieWordEmbeddings ? 1 : 2) + c.numLayers * perLayer + c.hiddenSize;
}
