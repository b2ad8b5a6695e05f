// ONNX external data: initializers kept in a side file beside the graph (`model.onnx` + `model.onnx_data`, as Optimum
// and onnx-community write models over 2 GB). A protobuf message cannot exceed 2 GiB, so a graph whose weights are
// larger can only be written this way; ONNX Runtime reads the side file relative to the model's path.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeModel, graphOf, type ModelProto } from './onnx-proto.ts';

/** Above this many bytes of initializers a model is written with external data (well under protobuf's 2 GiB). */
export const EXTERNAL_DATA_THRESHOLD = 1024 * 1024 * 1024;
/** Offsets in the side file are multiples of this, so that ONNX Runtime can map tensors in place. */
const ALIGN = 4096;
/** Initializers smaller than this stay in the graph (shapes, axes, scalars). */
const MIN_EXTERNAL_BYTES = 1024;

/** The contents of a file written piece by piece (a side file can exceed the largest single buffer). */
export class FileChunks {
  constructor(readonly chunks: Uint8Array[]) {}

  get byteLength(): number {
    return this.chunks.reduce((n, c) => n + c.byteLength, 0);
  }
}

export function initializerBytes(model: ModelProto): number {
  return graphOf(model).initializer.reduce((n, t) => n + (t.rawData?.length ?? 0), 0);
}

/** Moves every initializer of at least 1 KiB into `dataName` (a file beside the graph); returns the side file's chunks.
 * Mutates `model`. */
export function moveToExternalData(model: ModelProto, dataName: string): FileChunks {
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const t of graphOf(model).initializer) {
    const raw = t.rawData;
    if (!raw || raw.length < MIN_EXTERNAL_BYTES) continue;
    const pad = (ALIGN - (offset % ALIGN)) % ALIGN;
    if (pad) chunks.push(new Uint8Array(pad));
    offset += pad;
    chunks.push(raw);
    t.externalData = [
      { key: 'location', value: dataName },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(raw.length) },
    ];
    t.dataLocation = 1; // onnx.TensorProto.DataLocation.EXTERNAL
    t.rawData = new Uint8Array(0);
    offset += raw.length;
  }
  return new FileChunks(chunks);
}

/** The files of one model under onnx/: the graph alone, or the graph and its `_data` side file when the weights are
 * over `threshold` bytes. */
export function modelFiles(model: ModelProto, fileName: string, threshold = EXTERNAL_DATA_THRESHOLD): Record<string, Uint8Array | FileChunks> {
  if (initializerBytes(model) <= threshold) return { [fileName]: encodeModel(model) };
  const data = moveToExternalData(model, `${fileName}_data`);
  return { [fileName]: encodeModel(model), [`${fileName}_data`]: data };
}

/** Reads external initializers back into the graph (`dir`: the model file's folder). Mutates `model`. */
export function loadExternalData(model: ModelProto, dir: string): ModelProto {
  const files = new Map<string, Uint8Array>();
  for (const t of graphOf(model).initializer) {
    if (t.dataLocation !== 1) continue;
    const entry = (key: string) => t.externalData?.find((e) => e.key === key)?.value ?? undefined;
    const location = entry('location');
    if (!location || location.includes('/') || location.includes('\\') || location.startsWith('.')) {
      throw new Error(`initializer ${t.name}: external data location "${location}" is not a file beside the model`);
    }
    let data = files.get(location);
    if (!data) files.set(location, (data = readFileSync(join(dir, location))));
    const offset = Number(entry('offset') ?? 0);
    const length = Number(entry('length') ?? data.length - offset);
    if (!(offset >= 0 && length >= 0 && offset + length <= data.length)) {
      throw new Error(`initializer ${t.name}: external data [${offset}, ${offset + length}) is outside ${location} (${data.length} bytes)`);
    }
    t.rawData = data.subarray(offset, offset + length);
    t.dataLocation = 0;
    t.externalData = [];
  }
  return model;
}
