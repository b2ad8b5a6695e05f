// INT8 variant: symmetric per-output-channel int8 weights on every MatMul whose B is a float32 initializer, and
// activations quantized dynamically per token (per row, symmetric, stored as uint8 around 128), then MatMulInteger
// (u8 x s8 -> int32) and a rescale.
// Per-token, not per-tensor as onnxruntime's quantize_dynamic does with DynamicQuantizeLinear: a per-tensor scale
// depends on every other row of the batch, so a sequence's logits would change with what it is batched with and
// speculative verification (k+1 rows) would disagree with plain decoding (1 row). Per row, integer GEMM is exact
// and the result does not depend on the batch.
import { DataType, graphOf, tensorDims, tensorToFloat32, type ModelProto, type Graph, type TensorProto } from '../onnx/onnx-proto.ts';
import { makeTensor } from '../onnx/graph-builder.ts';

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
  const quantizedInputs = new Map<string, [string, string]>();
  const constants = new Map<string, string>();
  let zeroPointName = '';
  const activationZeroPoint = (): string => {
    if (!zeroPointName) {
      zeroPointName = 'int8_const_activation_zero_point';
      added.push(makeTensor(zeroPointName, DataType.UINT8, [], Uint8Array.of(128)));
    }
    return zeroPointName;
  };
  const constant = (name: string, value: number): string => {
    const full = `int8_const_${name}`;
    if (!constants.has(full)) {
      constants.set(full, full);
      added.push(makeTensor(full, DataType.FLOAT, [], Float32Array.of(value)));
    }
    return full;
  };
  let n = 0;
  const node = (opType: string, input: string[], output: string[], attribute: Graph['node'][number]['attribute'] = []): Graph['node'][number] =>
    ({ name: `int8_${opType}_${n++}`, opType, domain: '', input, output, attribute });

  // ReduceMax takes its axes as an attribute up to opset 17 and as an input from opset 18 on.
  const opset = Number(model.opsetImport?.find((o) => !o.domain)?.version ?? 17);
  const reduceMaxLastAxis = (input: string, output: string) => {
    const keepdims = { name: 'keepdims', type: 2, i: 1 };
    if (opset < 18) return node('ReduceMax', [input], [output], [{ name: 'axes', type: 7, ints: [-1] }, keepdims]);
    if (!constants.has('int8_const_last_axis')) {
      constants.set('int8_const_last_axis', 'int8_const_last_axis');
      added.push(makeTensor('int8_const_last_axis', DataType.INT64, [1], BigInt64Array.of(-1n)));
    }
    return node('ReduceMax', [input, 'int8_const_last_axis'], [output], [keepdims]);
  };

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
    );
    dropped.add(base);

    const a = nd.input![0];
    let aq = quantizedInputs.get(a);
    if (!aq) {
      const absMax = `${a}_absmax`;
      nodes.push(node('Abs', [a], [`${a}_abs`]));
      nodes.push(reduceMaxLastAxis(`${a}_abs`, absMax));
      nodes.push(node('Max', [absMax, constant('tiny', 1e-12)], [`${a}_absmax_safe`]));
      const scale = `${a}_row_scale`;
      nodes.push(node('Div', [`${a}_absmax_safe`, constant('int8_max', 127)], [scale]));
      nodes.push(node('Div', [a, scale], [`${a}_scaled`]));
      nodes.push(node('Round', [`${a}_scaled`], [`${a}_rounded`]));
      // Shift to uint8 around a zero point of 128: MLAS's fast integer GEMM kernels are u8 x s8.
      nodes.push(node('Add', [`${a}_rounded`, constant('zero_point', 128)], [`${a}_shifted`]));
      nodes.push(node('Clip', [`${a}_shifted`, constant('u8_min', 1), constant('u8_max', 255)], [`${a}_clipped`]));
      const quantized = `${a}_quantized`;
      nodes.push(node('Cast', [`${a}_clipped`], [quantized], [{ name: 'to', type: 2, i: DataType.UINT8 }]));
      aq = [quantized, scale];
      quantizedInputs.set(a, aq);
    }
    const acc = `${base}_int32`;
    nodes.push(node('MatMulInteger', [aq[0], `${base}_quantized`, activationZeroPoint()], [acc]));
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
