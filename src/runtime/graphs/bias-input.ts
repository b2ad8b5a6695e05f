// The forge's decoder graphs compute one additive attention bias [B, 1, S, T] from attention_mask (causal + padding,
// ~14 small nodes: shapes, ranges, comparisons, a Where) that every Attention node reads. For its own passes the
// runtime derives a graph that takes that bias as an input (`attention_bias`) and fills it in JS from the same
// information, with identical logits; per-node dispatch is a large share of a small model's step. The file on disk keeps
// Optimum's I/O; only graphs the forge wrote (producer "specserve", whose mask semantics are known: query i of a pass
// with P past slots sees slot j iff j <= P + i and attention_mask[j] = 1) are derived.
import { graphOf, DataType, type ModelProto, type TensorProto } from '../../onnx/onnx-proto.ts';

export const BIAS_INPUT = 'attention_bias';

export interface BiasInputModel {
  model: ModelProto;
  type: 'float32' | 'float16';
  /** The bias values for an allowed and a masked key, as the graph's Where node had them: float32 values, or float16
   * bits. */
  allowed: number;
  masked: number;
}

/** The derived graph, or null where `model` is not a forge graph with one shared Where-made attention bias. */
export function withBiasInput(model: ModelProto): BiasInputModel | null {
  if (model.producerName !== 'specserve') return null;
  const g = graphOf(model);
  const attention = g.node.filter((n) => n.opType === 'Attention' && !n.domain);
  const bias = attention[0]?.input[3];
  if (!bias || attention.some((n) => n.input[3] !== bias)) return null;
  const where = g.node.find((n) => n.output.includes(bias));
  if (where?.opType !== 'Where' || where.domain) return null;
  const scalar = (name: string) => g.initializer.find((t) => t.name === name && (t.dims ?? []).length === 0);
  const [allowed, masked] = [scalar(where.input[1]), scalar(where.input[2])];
  if (!allowed || !masked || allowed.dataType !== masked.dataType) return null;
  const type = allowed.dataType === DataType.FLOAT ? 'float32' : allowed.dataType === DataType.FLOAT16 ? 'float16' : null;
  if (!type) return null;

  for (const n of attention) n.input[3] = BIAS_INPUT;
  const outputs = g.output.map((o) => o.name!);
  const needed = new Set(outputs);
  const kept: typeof g.node = [];
  for (let i = g.node.length - 1; i >= 0; i--) {
    const n = g.node[i];
    if (!n.output.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const input of n.input) if (input) needed.add(input);
  }
  g.node = kept.reverse();
  g.initializer = g.initializer.filter((t) => needed.has(t.name!));
  g.input = g.input.filter((i) => needed.has(i.name!));
  g.input.push({
    name: BIAS_INPUT,
    type: { tensorType: { elemType: allowed.dataType, shape: { dim: [
      { dimParam: 'batch_size' }, { dimValue: 1 }, { dimParam: 'sequence_length' }, { dimParam: 'total_sequence_length' }] } } },
  });
  return { model, type, allowed: scalarValue(allowed, type), masked: scalarValue(masked, type) };
}

/** A scalar initializer's float32 value, or its float16 bits. */
function scalarValue(t: TensorProto, type: 'float32' | 'float16'): number {
  if (t.rawData && t.rawData.length > 0) {
    const bytes = new Uint8Array(t.rawData).buffer; // a copy: aligned, little-endian like the format
    return type === 'float32' ? new Float32Array(bytes, 0, 1)[0] : new Uint16Array(bytes, 0, 1)[0];
  }
  // Without raw data: float32 in float_data, float16 bits in int32_data.
  return type === 'float32' ? (t.floatData?.[0] ?? 0) : (t.int32Data?.[0] ?? 0);
}
