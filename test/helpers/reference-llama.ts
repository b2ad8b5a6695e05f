// A plain TypeScript forward pass of the Llama decoder (no cache, one sequence): the oracle the ONNX graph is
// checked against. Written for clarity, not speed.
import type { LlamaConfig } from '../../src/forge/llama-config.ts';
import type { LlamaWeights } from '../../src/forge/llama-weights.ts';
import { ropeTables } from '../../src/forge/llama-graph.ts';

function matmul(x: Float32Array, rows: number, inner: number, w: Float32Array, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let k = 0; k < inner; k++) {
      const a = x[r * inner + k];
      if (a === 0) continue;
      const wRow = k * cols;
      const oRow = r * cols;
      for (let c = 0; c < cols; c++) out[oRow + c] += a * w[wRow + c];
    }
  }
  return out;
}

function rmsNorm(x: Float32Array, rows: number, dim: number, w: Float32Array, eps: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r * dim + i] ** 2;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * inv * w[i];
  }
  return out;
}

/** Rotate-half RoPE in place on [rows, heads, headDim] at the given positions. */
function applyRope(x: Float32Array, positions: number[], heads: number, hd: number, cos: Float32Array, sinSigned: Float32Array) {
  const half = hd / 2;
  positions.forEach((p, r) => {
    for (let h = 0; h < heads; h++) {
      const base = (r * heads + h) * hd;
      const orig = x.slice(base, base + hd);
      for (let i = 0; i < hd; i++) {
        const rotated = i < half ? orig[i + half] : orig[i - half];
        x[base + i] = orig[i] * cos[p * hd + i] + rotated * sinSigned[p * hd + i];
      }
    }
  });
}

/** Logits [tokens.length, vocab] for one sequence whose positions are 0..n-1. */
export function referenceLogits(c: LlamaConfig, w: LlamaWeights, tokens: number[]): Float32Array {
  const n = tokens.length;
  const D = c.hiddenSize;
  const hd = c.headDim;
  const groups = c.numHeads / c.numKvHeads;
  const { cos, sinSigned } = ropeTables(c);
  const positions = tokens.map((_, i) => i);
  let x = new Float32Array(n * D);
  tokens.forEach((t, i) => x.set(w.embed.subarray(t * D, (t + 1) * D), i * D));

  for (const lw of w.layers) {
    const h = rmsNorm(x, n, D, lw.inputNorm, c.rmsNormEps);
    const q = matmul(h, n, D, lw.q, c.numHeads * hd);
    const k = matmul(h, n, D, lw.k, c.numKvHeads * hd);
    const v = matmul(h, n, D, lw.v, c.numKvHeads * hd);
    applyRope(q, positions, c.numHeads, hd, cos, sinSigned);
    applyRope(k, positions, c.numKvHeads, hd, cos, sinSigned);
    const ctx = new Float32Array(n * c.numHeads * hd);
    for (let head = 0; head < c.numHeads; head++) {
      const kvHead = Math.floor(head / groups);
      for (let i = 0; i < n; i++) {
        const scores = new Float64Array(i + 1);
        let max = -Infinity;
        for (let j = 0; j <= i; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[(i * c.numHeads + head) * hd + d] * k[(j * c.numKvHeads + kvHead) * hd + d];
          scores[j] = dot / Math.sqrt(hd);
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j <= i; j++) sum += scores[j] = Math.exp(scores[j] - max);
        for (let j = 0; j <= i; j++) {
          for (let d = 0; d < hd; d++) {
            ctx[(i * c.numHeads + head) * hd + d] += (scores[j] / sum) * v[(j * c.numKvHeads + kvHead) * hd + d];
          }
        }
      }
    }
    const attn = matmul(ctx, n, c.numHeads * hd, lw.o, D);
    x = x.map((val, i) => val + attn[i]);
    const h2 = rmsNorm(x, n, D, lw.postNorm, c.rmsNormEps);
    const gate = matmul(h2, n, D, lw.gate, c.intermediateSize);
    const up = matmul(h2, n, D, lw.up, c.intermediateSize);
    const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
    const down = matmul(act, n, c.intermediateSize, lw.down, D);
    x = x.map((val, i) => val + down[i]);
  }
  return matmul(rmsNorm(x, n, D, w.finalNorm, c.rmsNormEps), n, D, w.lmHead, c.vocabSize);
}
