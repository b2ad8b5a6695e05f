// FP16 variant of a float32 decoder graph: weights stored as float16 (half the file and download size), KV cache
// inputs/outputs and logits in float16 as in onnx-community's model_fp16.onnx. Arithmetic stays float32: every
// float16 weight feeds a Cast that ONNX Runtime constant-folds at load, and the graph casts at its edges, so the
// graph runs on the CPU provider (which lacks float16 kernels for most ops) and on CUDA alike.
import { DataType, graphOf, tensorDims, tensorToFloat32, type ModelProto, type Graph, type TensorProto } from '../onnx/onnx-proto.ts';
import { makeTensor } from '../onnx/graph-builder.ts';
import { toHalfArray } from '../onnx/float16.ts';

const isCacheOrLogits = (name: string) => name === 'logits' || name.startsWith('present.') || name.startsWith('past_key_values.');

export function convertToFp16(model: ModelProto): ModelProto {
  const graph = graphOf(model);
  const head: Graph['node'] = [];
  const tail: Graph['node'] = [];
  let n = 0;
  const cast = (input: string, output: string, to: number): Graph['node'][number] =>
    ({ name: `fp16_cast_${n++}`, opType: 'Cast', domain: '', input: [input], output: [output], attribute: [{ name: 'to', type: 2, i: to }] });

  const initializers: TensorProto[] = [];
  for (const t of graph.initializer) {
    // Scalars stay float32: constants such as the attention mask's -3.4e38 do not fit in float16.
    if (t.dataType !== DataType.FLOAT || tensorDims(t).length === 0) {
      initializers.push(t);
      continue;
    }
    const halfName = `${t.name}_fp16`;
    initializers.push(makeTensor(halfName, DataType.FLOAT16, tensorDims(t), toHalfArray(tensorToFloat32(t))));
    head.push(cast(halfName, t.name!, DataType.FLOAT));
  }

  const renamed = new Map<string, string>();
  for (const input of graph.input) {
    if (!isCacheOrLogits(input.name!) || input.type?.tensorType?.elemType !== DataType.FLOAT) continue;
    input.type.tensorType.elemType = DataType.FLOAT16;
    const inner = `${input.name}_fp32`;
    renamed.set(input.name!, inner);
    head.push(cast(input.name!, inner, DataType.FLOAT));
  }
  for (const node of graph.node) node.input = node.input.map((i) => renamed.get(i) ?? i);

  for (const output of graph.output) {
    if (!isCacheOrLogits(output.name!) || output.type?.tensorType?.elemType !== DataType.FLOAT) continue;
    output.type.tensorType.elemType = DataType.FLOAT16;
    const inner = `${output.name}_fp32`;
    for (const node of graph.node) node.output = node.output.map((o) => (o === output.name ? inner : o));
    for (const node of graph.node) node.input = node.input.map((i) => (i === output.name ? inner : i));
    tail.push(cast(inner, output.name!, DataType.FLOAT16));
  }

  graph.initializer = initializers;
  graph.node = [...head, ...graph.node, ...tail];
  return model;
}
