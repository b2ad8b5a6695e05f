// WebGPU against CUDA on one GPU: bare greedy loops (batch 1) over the model file as it is (Optimum's presents). With
// CUDA, onnxruntime-node hands every present back to the host and the next pass sends it again; with WebGPU the
// presents can stay on the device (`preferredOutputLocation: 'gpu-buffer'`) and be fed back as they are, so that the
// cache never crosses. Run by bench/gpu/run.sh (`bench bench/gpu/webgpu.bench.ts ...`) on the GPU machine.
//
//   node bin/run-ts.js bench/gpu/webgpu.bench.ts --model DIR [--dtype fp16] [--steps 64] [--eps cuda,webgpu,webgpu-host]
//     [--profile] [--out FILE]
import ort from 'onnxruntime-node';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { openModelFolder, type Dtype } from '../../src/runtime/model-folder.ts';
import { TextTokenizer } from '../../src/runtime/tokenizer.ts';
import { halfToFloatArray } from '../../src/onnx/float16.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' }, dtype: { type: 'string', default: 'fp16' }, steps: { type: 'string', default: '64' },
    eps: { type: 'string', default: 'cuda,webgpu,webgpu-host' }, profile: { type: 'boolean', default: false }, out: { type: 'string' },
  },
});
const dir = resolve(args.model!);
const folder = openModelFolder(dir, args.dtype as Dtype);
const tokenizer = TextTokenizer.load(dir);
const prompt = tokenizer.encode('Once upon a time');
const steps = Number(args.steps);

interface Loop {
  ep: string;
  ids: number[];
  stepMs: number;
  loadSeconds: number;
  placement?: Record<string, number>;
  error?: string;
}

function argmax(t: ort.Tensor, position: number): number {
  const data = t.type === 'float16' ? halfToFloatArray(t.data as Uint16Array) : (t.data as Float32Array);
  const V = Number(t.dims[2]);
  let best = 0;
  for (let i = 1; i < V; i++) if (data[position * V + i] > data[position * V + best]) best = i;
  return best;
}

async function loop(variant: string): Promise<Loop> {
  const ep = variant === 'webgpu-host' ? 'webgpu' : variant;
  const onDevice = variant === 'webgpu';
  const profilePrefix = join(resolve('.'), `webgpu-profile-${variant}`);
  const t0 = performance.now();
  const probe = await ort.InferenceSession.create(folder.modelPath, { executionProviders: [ep] });
  const presents = probe.outputNames.filter((n) => n.startsWith('present.'));
  await probe.release();
  const session = await ort.InferenceSession.create(folder.modelPath, {
    executionProviders: [ep], graphOptimizationLevel: 'all',
    ...(onDevice ? { preferredOutputLocation: Object.fromEntries(presents.map((n) => [n, 'gpu-buffer' as const])) } : {}),
    ...(args.profile ? { enableProfiling: true, profileFilePrefix: profilePrefix } : {}),
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]) as unknown as { type: ort.Tensor.Type; shape: (number | string)[] };
  const [, kvHeads, , headDim] = meta.shape as number[];
  const empty = () => new ort.Tensor(meta.type, meta.type === 'float16' ? new Uint16Array(0) : new Float32Array(0), [1, kvHeads, 0, headDim]);
  let past: Record<string, ort.Tensor> = Object.fromEntries(pastNames.map((n) => [n, empty()]));
  const i64 = (v: number[]) => new ort.Tensor('int64', BigInt64Array.from(v.map(BigInt)), [1, v.length]);
  let input = prompt;
  let length = 0;
  const ids: number[] = [];
  const times: number[] = [];
  for (let step = 0; step < steps; step++) {
    const t = performance.now();
    const out = await session.run({
      input_ids: i64(input), attention_mask: i64(new Array(length + input.length).fill(1)),
      position_ids: i64(input.map((_, i) => length + i)), ...past,
    });
    const next = argmax(out.logits, input.length - 1);
    if (step > 0) times.push(performance.now() - t);
    if (onDevice) for (const old of Object.values(past)) if (old.location === 'gpu-buffer') old.dispose();
    past = Object.fromEntries(pastNames.map((n) => [n, out[n.replace('past_key_values', 'present')]]));
    ids.push(next);
    length += input.length;
    input = [next];
  }
  if (onDevice) for (const t of Object.values(past)) if (t.location === 'gpu-buffer') t.dispose();
  let placement: Record<string, number> | undefined;
  if (args.profile) {
    session.endProfiling();
    const file = readdirSync('.').find((f) => join(resolve('.'), f).startsWith(profilePrefix));
    if (file) {
      placement = {};
      const seen = new Set<string>();
      for (const e of JSON.parse(readFileSync(file, 'utf8')) as { cat?: string; name?: string; args?: { provider?: string; op_name?: string } }[]) {
        if (e.cat !== 'Node' || !e.args?.provider || !e.name?.endsWith('_kernel_time') || seen.has(e.name)) continue;
        seen.add(e.name);
        const key = `${e.args.provider}:${e.args.op_name}`;
        placement[key] = (placement[key] ?? 0) + 1;
      }
      rmSync(file);
    }
  }
  await session.release();
  times.sort((a, b) => a - b);
  return { ep: variant, ids, stepMs: Number(times[Math.floor(times.length / 2)].toFixed(3)), loadSeconds: Number(loadSeconds.toFixed(1)), placement };
}

const results: Loop[] = [];
for (const variant of args.eps!.split(',')) {
  try {
    const r = await loop(variant);
    results.push(r);
    console.log(`[webgpu] ${dir.split('/').pop()} ${args.dtype} ${variant}: ${r.stepMs} ms per decode step (median of ${steps - 1}), ` +
      `${(1000 / r.stepMs).toFixed(1)} tok/s, loaded in ${r.loadSeconds} s${r.placement ? `, nodes ${JSON.stringify(r.placement)}` : ''}`);
  } catch (err) {
    const error = (err as Error).message.split('\n').slice(0, 3).join(' | ');
    results.push({ ep: variant, ids: [], stepMs: NaN, loadSeconds: NaN, error });
    console.log(`[webgpu] ${variant}: FAILED ${error}`);
  }
}
const reference = results.find((r) => r.ids.length)?.ids ?? [];
const summary = results.map((r) => ({ ...r, sameTokensAs: results[0].ep, equal: r.ids.length > 0 && r.ids.every((id, i) => id === reference[i]), ids: undefined }));
console.log(`[webgpu] ${JSON.stringify(summary)}`);
if (args.out) writeFileSync(args.out, JSON.stringify({ model: dir.split('/').pop(), dtype: args.dtype, steps, results: summary }, null, 2) + '\n');
