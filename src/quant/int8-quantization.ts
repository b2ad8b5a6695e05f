// INT8 variant: weight-only symmetric per-output-channel int8 on every MatMul whose B is a float32 initializer,
// activations quantized dynamically per tensor (DynamicQuantizeLinear -> MatMulInteger -> rescale), the pattern of
// onnxruntime.quantization.quantize_dynamic. ONNX Runtime's CPU provider fuses it into DynamicQuantizeMatMul.
import { DataType, graphOf, tensorDims, tensorToFloat32, type ModelProto, type Graph, type TensorProto } from './onnx-proto.ts';
import { makeTensor } from './graph-builder.ts';

export interface QuantizedMatrix {
  values: Int8Array; // [rows, cols]
  scales: Float32Array; // [cols]
}

/** Symmetric per-column int8: scale = max|B[:, j]| / 127, q = round(B / scale). */
export function quantizePerColumn(b: Float32Array, rows: number, cols: number): QuantizedMatrix {
  const scales = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) scales[c] = Math.max(scales[c], Math.abs(b[r * cols + c]));
  }
  for (let c = 0; c < cols; c++) scales[c] = scales[c] > 0 ? scales[c] / 127 : 1;
  const values = new Int8Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) values[r * cols + c] = Math.max(-127, Math.min(127, Math.round(b[r * cols + c] / scales[c])));
  }
  return { values, scales };
}

export function quantizeToInt8(model: ModelProto): ModelProto {
  const graph = graphOf(model);
  const initByName = new Map(graph.initializer.map((t) => [t.name!, t]));
  const dropped = new Set<string>();
  const added: TensorProto[] = [];
  const nodes: Graph['node'] = [];
  const quantizedInputs = new Map<string, [string, string, string]>();
  let n = 0;
  const node = (opType: string, input: string[], output: string[], attribute: Graph['node'][number]['attribute'] = []): Graph['node'][number] =>
    ({ name: `int8_${opType}_${n++}`, opType, domain: '', input, output, attribute });

  for (const nd of graph.node) {
    const b = nd.opType === 'MatMul' ? initByName.get(nd.input![1]) : undefined;
    const dims = b ? tensorDims(b) : [];
    if (!b || b.dataType !== DataType.FLOAT || dims.length !== 2) {
      nodes.push(nd);
      continue;
    }
    const [rows, cols] = dims;
    const q = quantizePerColumn(tensorToFloat32(b), rows, cols);
    const base = b.name!;
    added.push(
      makeTensor(`${base}_quantized`, DataType.INT8, [rows, cols], q.values),
      makeTensor(`${base}_scale`, DataType.FLOAT, [cols], q.scales),
      makeTensor(`${base}_zero_point`, DataType.INT8, [cols], new Int8Array(cols)),
    );
    dropped.add(base);

    const a = nd.input![0];
    let aq = quantizedInputs.get(a);
    if (!aq) {
      aq = [`${a}_quantized`, `${a}_scale`, `${a}_zero_point`];
      nodes.push(node('DynamicQuantizeLinear', [a], aq));
      quantizedInputs.set(a, aq);
    }
    const acc = `${base}_int32`;
    nodes.push(node('MatMulInteger', [aq[0], `${base}_quantized`, aq[2], `${base}_zero_point`], [acc]));
    const accF = `${base}_int32_float`;
    nodes.push(node('Cast', [acc], [accF], [{ name: 'to', type: 2, i: DataType.FLOAT }]));
    const scaled = `${base}_rescaled_a`;
    nodes.push(node('Mul', [accF, aq[1]], [scaled]));
    nodes.push(node('Mul', [scaled, `${base}_scale`], [nd.output![0]]));
  }
  graph.node = nodes;
  graph.initializer = [...graph.initializer.filter((t) => !dropped.has(t.name!)), ...added];
  return model;
}
