// A bare ONNX Runtime greedy loop (batch 1, present fed back as past): the forge's tests check models with it
// independently of src/runtime's decoder.
import ort from 'onnxruntime-node';
import { halfToFloatArray } from '../../src/onnx/float16.ts';

export interface GreedyRun {
  ids: number[];
  /** Logits of every step, as float32 (float16 outputs are widened). */
  logits: Float32Array[];
}

export function asFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return halfToFloatArray(t.data as Uint16Array);
  throw new Error(`unexpected tensor type ${t.type}`);
}

export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}

/** A session and its empty KV cache inputs (batch 1), with the KV type and shape read from the graph. */
async function openWithEmptyPast(modelPath: string) {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  if (!meta || !meta.isTensor) throw new Error('no KV input metadata');
  const kvType = meta.type as 'float32' | 'float16';
  const [, kvHeads, , headDim] = meta.shape as [unknown, number, unknown, number];
  const empty = kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  const emptyPast = Object.fromEntries(pastNames.map((n) => [n, new ort.Tensor(kvType, empty, [1, kvHeads, 0, headDim])]));
  return { session, pastNames, emptyPast };
}

const i64 = (values: number[], n: number) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), [1, n]);

function feeds(tokens: number[], pastLength: number): Record<string, ort.Tensor> {
  const n = tokens.length;
  return {
    input_ids: i64(tokens, n),
    attention_mask: i64(new Array(pastLength + n).fill(1), pastLength + n),
    position_ids: i64(tokens.map((_, i) => pastLength + i), n),
  };
}

export async function ortGreedy(modelPath: string, prompt: number[], steps: number): Promise<GreedyRun> {
  const { session, pastNames, emptyPast } = await openWithEmptyPast(modelPath);
  let past: Record<string, ort.Tensor> = emptyPast;
  let input = prompt;
  let length = 0;
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  for (let step = 0; step < steps; step++) {
    const out = await session.run({ ...feeds(input, length), ...past });
    const all = asFloat32(out.logits);
    const vocab = all.length / input.length;
    const last = all.slice((input.length - 1) * vocab);
    const best = argmax(last);
    ids.push(best);
    logits.push(last);
    past = Object.fromEntries(pastNames.map((name) => [name, out[name.replace('past_key_values', 'present')]]));
    length += input.length;
    input = [best];
  }
  await session.release();
  return { ids, logits };
}

/** Logits of every position of `tokens` in one prefill pass (teacher forcing): [tokens.length][vocab]. */
export async function ortTeacherForced(modelPath: string, tokens: number[]): Promise<Float32Array[]> {
  const { session, emptyPast } = await openWithEmptyPast(modelPath);
  const out = await session.run({ ...feeds(tokens, 0), ...emptyPast });
  const all = asFloat32(out.logits);
  const vocab = all.length / tokens.length;
  await session.release();
  return Array.from({ length: tokens.length }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
}
