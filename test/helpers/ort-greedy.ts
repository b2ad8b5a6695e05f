// A bare ONNX Runtime greedy loop (batch 1, present fed back as past): the forge's tests check models with it
// independently of src/runtime.
import ort from 'onnxruntime-node';

export interface GreedyRun {
  ids: number[];
  /** Logits of every step, as float32 (float16 outputs are widened). */
  logits: Float32Array[];
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

export function asFloat32(t: ort.Tensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'float16') return Float32Array.from(t.data as Uint16Array, halfToFloat);
  throw new Error(`unexpected tensor type ${t.type}`);
}

export async function ortGreedy(modelPath: string, prompt: number[], steps: number): Promise<GreedyRun> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  if (!meta || !meta.isTensor) throw new Error('no KV input metadata');
  const kvType = meta.type as 'float32' | 'float16';
  const [, kvHeads, , headDim] = meta.shape as [unknown, number, unknown, number];
  const empty = kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  let past: Record<string, ort.Tensor> = Object.fromEntries(pastNames.map((n) => [n, new ort.Tensor(kvType, empty, [1, kvHeads, 0, headDim])]));
  let input = prompt;
  let length = 0;
  const ids: number[] = [];
  const logits: Float32Array[] = [];
  for (let step = 0; step < steps; step++) {
    const n = input.length;
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(input.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(length + n).fill(1n), [1, length + n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(length + i)), [1, n]),
      ...past,
    });
    const all = asFloat32(out.logits);
    const vocab = all.length / n;
    const last = all.slice((n - 1) * vocab);
    let best = 0;
    for (let i = 1; i < vocab; i++) if (last[i] > last[best]) best = i;
    ids.push(best);
    logits.push(last);
    past = Object.fromEntries(pastNames.map((name) => [name, out[name.replace('past_key_values', 'present')]]));
    length += n;
    input = [best];
  }
  await session.release();
  return { ids, logits };
}

/** Logits of every position of `tokens` in one prefill pass (teacher forcing): [tokens.length][vocab]. */
export async function ortTeacherForced(modelPath: string, tokens: number[]): Promise<Float32Array[]> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1 });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  if (!meta || !meta.isTensor) throw new Error('no KV input metadata');
  const kvType = meta.type as 'float32' | 'float16';
  const [, kvHeads, , headDim] = meta.shape as [unknown, number, unknown, number];
  const empty = kvType === 'float16' ? new Uint16Array(0) : new Float32Array(0);
  const n = tokens.length;
  const out = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [1, n]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(n).fill(1n), [1, n]),
    position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), [1, n]),
    ...Object.fromEntries(pastNames.map((name) => [name, new ort.Tensor(kvType, empty, [1, kvHeads, 0, headDim])])),
  });
  const all = asFloat32(out.logits);
  const vocab = all.length / n;
  await session.release();
  return Array.from({ length: n }, (_, i) => all.slice(i * vocab, (i + 1) * vocab));
}

export function argmax(a: Float32Array): number {
  let best = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[best]) best = i;
  return best;
}
