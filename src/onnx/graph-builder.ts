// A small, explicit builder for ONNX graphs: named values, typed initializers, nodes with attributes.
import type { onnx as Onnx } from 'onnx-proto';
import { onnx, DataType, type DataTypeId, type TensorProto, type NodeProto } from './onnx-proto.ts';

export type Dim = number | string;
export type AttrValue = number | string | number[] | { float: number } | { tensor: TensorProto };

export interface ValueInfo {
  name: string;
  type: DataTypeId;
  dims: Dim[];
}

export class GraphBuilder {
  readonly nodes: NodeProto[] = [];
  readonly initializers: TensorProto[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  private readonly constants = new Map<string, string>();

  input(name: string, type: DataTypeId, dims: Dim[]): string {
    this.inputs.push({ name, type, dims });
    return name;
  }

  output(name: string, type: DataTypeId, dims: Dim[]): void {
    this.outputs.push({ name, type, dims });
  }

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}_${this.counter++}`;
  }

  initializer(name: string, type: DataTypeId, dims: number[], data: ArrayBufferView): string {
    this.initializers.push(makeTensor(name, type, dims, data));
    return name;
  }

  /** A shared int64 constant initializer (shapes, axes, indices); deduplicated by value. */
  int64(values: number[], scalar = false): string {
    const key = `i64:${scalar}:${values.join(',')}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_i64');
      this.initializer(name, DataType.INT64, scalar ? [] : [values.length], BigInt64Array.from(values.map(BigInt)));
      this.constants.set(key, name);
    }
    return name;
  }

  /** A shared float32 scalar constant. */
  float(value: number): string {
    const key = `f32:${value}`;
    let name = this.constants.get(key);
    if (!name) {
      name = this.fresh('const_f32');
      this.initializer(name, DataType.FLOAT, [], Float32Array.of(value));
      this.constants.set(key, name);
    }
    return name;
  }

  /** Adds a node; returns its output names (fresh unless given). */
  op(
    opType: string,
    inputs: string[],
    attrs: Record<string, AttrValue> = {},
    outputs: number | string[] = 1,
    domain = '',
  ): string[] {
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(opType)) : outputs;
    this.nodes.push({
      name: this.fresh(`${opType}_node`),
      opType,
      domain,
      input: inputs,
      output: outNames,
      attribute: Object.entries(attrs).map(([name, v]) => makeAttribute(name, v)),
    });
    return outNames;
  }

  /** Single-output shorthand for `op`. */
  op1(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string, domain = ''): string {
    return this.op(opType, inputs, attrs, output ? [output] : 1, domain)[0];
  }

  toModel(opts: { opset: number; producer: string; graphName: string; msOpset?: number }): Onnx.IModelProto {
    const opsetImport: Onnx.IOperatorSetIdProto[] = [{ domain: '', version: opts.opset }];
    if (opts.msOpset) opsetImport.push({ domain: 'com.microsoft', version: opts.msOpset });
    return {
      irVersion: 10,
      producerName: opts.producer,
      opsetImport,
      graph: {
        name: opts.graphName,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs.map(valueInfo),
        output: this.outputs.map(valueInfo),
      },
    };
  }
}

export function makeTensor(name: string, type: DataTypeId, dims: number[], data: ArrayBufferView): TensorProto {
  return {
    name,
    dataType: type,
    dims,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
  };
}

export function valueInfo(v: ValueInfo): Onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: v.type,
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function makeAttribute(name: string, v: AttrValue): Onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for non-integers`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  return { name, type: T.TENSOR, t: v.tensor };
}
