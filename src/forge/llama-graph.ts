// The Llama decoder as an ONNX graph with Hugging Face Optimum's decoder-with-past I/O:
//   input_ids, attention_mask, position_ids, past_key_values.{i}.key|value  ->  logits, present.{i}.key|value
// Opset 23, so that the attention block is three fused standard ops instead of ~25 elementwise/reshape nodes:
// RMSNormalization, RotaryEmbedding (Hugging Face rotate-half layout, positions from position_ids) and Attention
// (grouped-query heads, past/present K/V, an additive causal+padding mask): fewer nodes, and a small model's step is
// mostly per-node dispatch; the maths is unchanged (same reference tests).
import { GraphBuilder } from '../onnx/graph-builder.ts';
import { DataType } from '../onnx/onnx-proto.ts';
import type { LlamaConfig } from './llama-config.ts';
import { checkWeights, type LlamaWeights } from './llama-weights.ts';
import type { onnx } from 'onnx-proto';

export const OPSET = 23;

/** Initializer names, close to the Hugging Face state dict (projection matrices are stored [in, out]). */
export const weightNames = {
  embed: 'model.embed_tokens.weight',
  finalNorm: 'model.norm.weight',
  lmHead: 'lm_head.weight_t',
  layer: (i: number) => ({
    inputNorm: `model.layers.${i}.input_layernorm.weight`,
    q: `model.layers.${i}.self_attn.q_proj.weight_t`,
    k: `model.layers.${i}.self_attn.k_proj.weight_t`,
    v: `model.layers.${i}.self_attn.v_proj.weight_t`,
    o: `model.layers.${i}.self_attn.o_proj.weight_t`,
    postNorm: `model.layers.${i}.post_attention_layernorm.weight`,
    gate: `model.layers.${i}.mlp.gate_proj.weight_t`,
    up: `model.layers.${i}.mlp.up_proj.weight_t`,
    down: `model.layers.${i}.mlp.down_proj.weight_t`,
  }),
  ropeCos: 'rope.cos_cached',
  ropeSin: 'rope.sin_signed_cached',
};

// Additive mask value for disallowed keys: the most negative float32 keeps fully masked rows (left padding)
// finite after softmax (uniform) instead of NaN, as transformers does with finfo.min.
const MASK_MIN = -3.4028234663852886e38;

/** cos(pos * inv_freq) duplicated over both halves, and sin with the first half negated (rotate_half's sign). */
export function ropeTables(c: LlamaConfig): { cos: Float32Array; sinSigned: Float32Array } {
  const half = c.headDim / 2;
  const cos = new Float32Array(c.maxPositionEmbeddings * c.headDim);
  const sinSigned = new Float32Array(c.maxPositionEmbeddings * c.headDim);
  for (let p = 0; p < c.maxPositionEmbeddings; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * Math.pow(c.ropeTheta, (-2 * i) / c.headDim);
      const row = p * c.headDim;
      cos[row + i] = cos[row + i + half] = Math.cos(angle);
      sinSigned[row + i] = -Math.sin(angle);
      sinSigned[row + i + half] = Math.sin(angle);
    }
  }
  return { cos, sinSigned };
}

export function buildLlamaGraph(c: LlamaConfig, w: LlamaWeights): onnx.IModelProto {
  checkWeights(c, w);
  const g = new GraphBuilder();
  const F = DataType.FLOAT;
  const D = c.hiddenSize;
  const H = c.numHeads;
  const KV = c.numKvHeads;
  const hd = c.headDim;

  const ids = g.input('input_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', DataType.INT64, ['batch_size', 'total_sequence_length']);
  const pos = g.input('position_ids', DataType.INT64, ['batch_size', 'sequence_length']);
  const past = Array.from({ length: c.numLayers }, (_, i) => ({
    key: g.input(`past_key_values.${i}.key`, F, ['batch_size', KV, 'past_sequence_length', hd]),
    value: g.input(`past_key_values.${i}.value`, F, ['batch_size', KV, 'past_sequence_length', hd]),
  }));
  g.output('logits', F, ['batch_size', 'sequence_length', c.vocabSize]);
  for (let i = 0; i < c.numLayers; i++) {
    g.output(`present.${i}.key`, F, ['batch_size', KV, 'total_sequence_length', hd]);
    g.output(`present.${i}.value`, F, ['batch_size', KV, 'total_sequence_length', hd]);
  }

  const embed = g.initializer(weightNames.embed, F, [c.vocabSize, D], w.embed);
  let x = g.op1('Gather', [embed, ids], { axis: 0 });

  // Rotary embedding with ONNX's RotaryEmbedding (opset 23): cos/sin tables [maxPositions, hd/2], rotate-half layout.
  const tables = ropeTables(c);
  const half = hd / 2;
  const cosHalf = new Float32Array(c.maxPositionEmbeddings * half);
  const sinHalf = new Float32Array(c.maxPositionEmbeddings * half);
  for (let p = 0; p < c.maxPositionEmbeddings; p++) {
    for (let j = 0; j < half; j++) {
      cosHalf[p * half + j] = tables.cos[p * hd + j];
      sinHalf[p * half + j] = tables.sinSigned[p * hd + half + j];
    }
  }
  const cosTable = g.initializer(weightNames.ropeCos, F, [c.maxPositionEmbeddings, half], cosHalf);
  const sinTable = g.initializer(weightNames.ropeSin, F, [c.maxPositionEmbeddings, half], sinHalf);

  // Causal + padding mask over cache slots: query i (slot past+i) sees slot j iff j <= past+i and mask[b, j] = 1.
  const one = g.int64([1], true);
  const zero = g.int64([0], true);
  const total = g.op1('Gather', [g.op1('Shape', [mask]), one], { axis: 0 });
  const seq = g.op1('Gather', [g.op1('Shape', [ids]), one], { axis: 0 });
  const pastLen = g.op1('Sub', [total, seq]);
  const keySlots = g.op1('Range', [zero, total, one]);
  const querySlots = g.op1('Add', [g.op1('Range', [zero, seq, one]), pastLen]);
  const causal = g.op1('LessOrEqual', [keySlots, g.op1('Unsqueeze', [querySlots, g.int64([1])])]); // [S, T]
  const padding = g.op1('Unsqueeze', [g.op1('Cast', [mask], { to: DataType.BOOL }), g.int64([1, 2])]); // [B,1,1,T]
  const allowed = g.op1('And', [causal, padding]); // [B, 1, S, T]
  const bias = g.op1('Where', [allowed, g.float(0), g.float(MASK_MIN)]);

  const rmsNorm = (t: string, weight: string): string =>
    g.op1('RMSNormalization', [t, weight], { axis: -1, epsilon: { float: c.rmsNormEps } });

  w.layers.forEach((lw, i) => {
    const n = weightNames.layer(i);
    const init = (name: string, dims: number[], data: Float32Array) => g.initializer(name, F, dims, data);
    const h = rmsNorm(x, init(n.inputNorm, [D], lw.inputNorm));

    const q = g.op1('MatMul', [h, init(n.q, [D, H * hd], lw.q)]);
    const k = g.op1('MatMul', [h, init(n.k, [D, KV * hd], lw.k)]);
    const v = g.op1('MatMul', [h, init(n.v, [D, KV * hd], lw.v)]);
    const qRot = g.op1('RotaryEmbedding', [q, cosTable, sinTable, pos], { num_heads: H, interleaved: 0 });
    const kRot = g.op1('RotaryEmbedding', [k, cosTable, sinTable, pos], { num_heads: KV, interleaved: 0 });
    const [attn] = g.op('Attention', [qRot, kRot, v, bias, past[i].key, past[i].value], { q_num_heads: H, kv_num_heads: KV },
      [g.fresh('attn'), `present.${i}.key`, `present.${i}.value`]);
    x = g.op1('Add', [x, g.op1('MatMul', [attn, init(n.o, [H * hd, D], lw.o)])]);

    const h2 = rmsNorm(x, init(n.postNorm, [D], lw.postNorm));
    const gate = g.op1('MatMul', [h2, init(n.gate, [D, c.intermediateSize], lw.gate)]);
    const up = g.op1('MatMul', [h2, init(n.up, [D, c.intermediateSize], lw.up)]);
    const act = g.op1('Mul', [g.op1('Mul', [gate, g.op1('Sigmoid', [gate])]), up]);
    x = g.op1('Add', [x, g.op1('MatMul', [act, init(n.down, [c.intermediateSize, D], lw.down)])]);
  });

  const final = rmsNorm(x, g.initializer(weightNames.finalNorm, F, [D], w.finalNorm));
  g.op1('MatMul', [final, g.initializer(weightNames.lmHead, F, [D, c.vocabSize], w.lmHead)], {}, 'logits');
  return g.toModel({ opset: OPSET, producer: 'specserve', graphName: 'llama_decoder' });
}
