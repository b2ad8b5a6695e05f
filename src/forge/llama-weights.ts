// Weights of a Llama decoder in the layout the ONNX graph consumes: every projection is a MatMul B, [in, out] row-major.
import type { LlamaConfig } from './llama-config.ts';

export interface LlamaLayerWeights {
  inputNorm: Float32Array; // [hidden]
  q: Float32Array; // [hidden, heads*headDim]
  k: Float32Array; // [hidden, kvHeads*headDim]
  v: Float32Array; // [hidden, kvHeads*headDim]
  o: Float32Array; // [heads*headDim, hidden]
  postNorm: Float32Array; // [hidden]
  gate: Float32Array; // [hidden, intermediate]
  up: Float32Array; // [hidden, intermediate]
  down: Float32Array; // [intermediate, hidden]
}

export interface LlamaWeights {
  embed: Float32Array; // [vocab, hidden]
  layers: LlamaLayerWeights[];
  finalNorm: Float32Array; // [hidden]
  lmHead: Float32Array; // [hidden, vocab] (the transposed embedding when tied)
}

/** Shapes of every tensor, used to check weights from any source before a graph is built. */
export function layerShapes(c: LlamaConfig): Record<keyof LlamaLayerWeights, [number, number] | [number]> {
  const qDim = c.numHeads * c.headDim;
  const kvDim = c.numKvHeads * c.headDim;
  return {
    inputNorm: [c.hiddenSize],
    q: [c.hiddenSize, qDim],
    k: [c.hiddenSize, kvDim],
    v: [c.hiddenSize, kvDim],
    o: [qDim, c.hiddenSize],
    postNorm: [c.hiddenSize],
    gate: [c.hiddenSize, c.intermediateSize],
    up: [c.hiddenSize, c.intermediateSize],
    down: [c.intermediateSize, c.hiddenSize],
  };
}

export function checkWeights(c: LlamaConfig, w: LlamaWeights): void {
  const expect = (name: string, a: Float32Array, n: number) => {
    if (a.length !== n) throw new Error(`weights: ${name} has ${a.length} values, expected ${n}`);
  };
  expect('embed', w.embed, c.vocabSize * c.hiddenSize);
  expect('lmHead', w.lmHead, c.vocabSize * c.hiddenSize);
  expect('finalNorm', w.finalNorm, c.hiddenSize);
  if (w.layers.length !== c.numLayers) throw new Error(`weights: ${w.layers.length} layers, expected ${c.numLayers}`);
  const shapes = layerShapes(c);
  w.layers.forEach((layer, i) => {
    for (const [key, dims] of Object.entries(shapes)) {
      expect(`layers.${i}.${key}`, layer[key as keyof LlamaLayerWeights], dims.reduce((a, b) => a * b, 1));
    }
  });
}

/** [rows, cols] row-major -> [cols, rows] row-major. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[r * cols + c];
  }
  return out;
}
