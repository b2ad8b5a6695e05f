// The GPU run: builds the models from ../shared's checkpoints, checks that greedy output on the GPU equals the CPU's,
// reads from ONNX Runtime's profile which provider ran each node, and measures tokens per second through the real
// server (`specserve serve --device cuda`) for plain and speculative decoding at several concurrencies. Made to run on
// the GPU machine by bench/gpu/run.sh (`npm run gpu:kit` prepares what it needs); `--device cpu` runs the same thing
// here, as a dry run of every step but the provider.
//
//   node bin/run-ts.js bench/gpu/gpu.bench.ts build --shared DIR --models DIR
//   node bin/run-ts.js bench/gpu/gpu.bench.ts run --shared DIR --models DIR --out DIR [--device cuda|cpu] [--quick]
//   (and, one step alone: greedy|kv --model DIR --dtype D --device D --max-tokens N)
import { spawn, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { cpus } from 'node:os';
import { convertLlama2c, widenModel, type ForgeDtype } from '../../src/forge/forge.ts';
import { parameterCount } from '../../src/forge/random-weights.ts';
import { fromHfConfig } from '../../src/forge/llama-config.ts';
import { Decoder } from '../../src/runtime/decoder.ts';
import { TextTokenizer } from '../../src/runtime/tokenizer.ts';
import { generate } from '../../test/helpers/plain-generation.ts';
import { GREEDY } from '../../src/runtime/sampling.ts';
import type { Dtype } from '../../src/runtime/model-folder.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const PROMPTS = ['Once upon a time', 'Lily and Tom went to the park', 'The little dog', 'One day, a girl named Sue', 'The sun was'];
const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    shared: { type: 'string' }, models: { type: 'string' }, out: { type: 'string' }, device: { type: 'string', default: 'cuda' },
    quick: { type: 'boolean', default: false }, 'budget-s': { type: 'string', default: '420' },
    model: { type: 'string' }, dtype: { type: 'string', default: 'fp32' }, 'max-tokens': { type: 'string', default: '64' },
  },
});
const stage = positionals[0];
const started = Date.now();
const budgetMs = Number(args['budget-s']) * 1000;
const device = args.device as 'cuda' | 'cpu';
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];
const range = (v: number[]) => [Math.min(...v), Math.max(...v)].map((x) => Number(x.toFixed(1)));
const log = (m: string) => console.log(`[gpu ${((Date.now() - started) / 1000).toFixed(1)}s] ${m}`);

interface ModelSpec {
  name: string;
  build: (dir: string) => void;
}

function modelSpecs(shared: string): ModelSpec[] {
  const tok = join(shared, 'stories260K/tok512.bin');
  const widen = (preset: string, dtypes: ForgeDtype[]) => (dir: string) =>
    widenModel(join(shared, 'stories260K/stories260K.bin'), dir, { preset, tokenizer: tok, dtypes });
  return [
    { name: 'stories260K', build: (dir) => convertLlama2c(join(shared, 'stories260K/stories260K.bin'), tok, dir) },
    { name: 'stories260K-draft', build: (dir) => convertLlama2c(join(shared, 'stories260K-draft/stories260K-draft.bin'), tok, dir) },
    { name: 'wide-100m', build: widen('wide-100m', ['fp32', 'fp16']) },
    { name: 'wide-1b', build: widen('wide-1b', ['fp16']) },
  ];
}

function buildModels(shared: string, models: string, only?: string[]): void {
  mkdirSync(models, { recursive: true });
  for (const spec of modelSpecs(shared)) {
    if (only && !only.includes(spec.name)) continue;
    const dir = join(models, spec.name);
    if (existsSync(dir)) continue;
    const t = Date.now();
    // Built under a temporary name and renamed: a folder that exists is complete.
    const partial = `${dir}.building`;
    rmSync(partial, { recursive: true, force: true });
    spec.build(partial);
    renameSync(partial, dir);
    log(`built ${spec.name} in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  }
  writeFileSync(join(models, 'BUILT'), new Date().toISOString() + '\n');
}

async function waitForModels(models: string, shared: string, names: string[]): Promise<void> {
  // `prepare` builds them in a background process (its pid in BUILDING); build here whatever it has not, once it is gone.
  const building = join(models, 'BUILDING');
  const alive = () => {
    try {
      process.kill(Number(readFileSync(building, 'utf8')), 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; existsSync(building) && !existsSync(join(models, 'BUILT')) && alive(); i++) {
    if (i % 20 === 0) log('waiting for the background model build ...');
    await new Promise((r) => setTimeout(r, 500));
  }
  buildModels(shared, models, names);
}

// ---- greedy equality ------------------------------------------------------------------------------------------------

async function greedyTokens(dir: string, dtype: Dtype, on: 'cpu' | 'cuda', maxTokens: number): Promise<{ ids: number[][]; seconds: number }> {
  const decoder = await Decoder.open(dir, { dtype, device: on });
  const tokenizer = TextTokenizer.load(dir);
  const t = Date.now();
  const ids: number[][] = [];
  try {
    for (const prompt of PROMPTS) {
      ids.push((await generate(decoder, tokenizer, tokenizer.encode(prompt), { maxTokens, sampling: GREEDY })).tokens);
    }
  } finally {
    await decoder.close();
  }
  return { ids, seconds: (Date.now() - t) / 1000 };
}

/** Greedy tokens on the GPU in a child process, so that its environment can differ (NVIDIA_TF32_OVERRIDE=0 keeps
 * cuBLAS off TF32 tensor cores, which ONNX Runtime's CUDA provider uses for float32 MatMul by default). */
function greedyInChild(dir: string, dtype: Dtype, maxTokens: number, env: Record<string, string>): { ids: number[][]; seconds: number } {
  const r = spawnSync(process.execPath, ['bin/run-ts.js', 'bench/gpu/gpu.bench.ts', 'greedy', '--model', dir, '--dtype', dtype,
    '--device', device, '--max-tokens', String(maxTokens)], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) throw new Error(`greedy child failed (${r.status}): ${r.stderr.trim().split('\n').slice(-4).join(' | ')}`);
  return JSON.parse(line) as { ids: number[][]; seconds: number };
}

async function greedyEquality(dir: string, dtype: Dtype, maxTokens: number) {
  const cpu = await greedyTokens(dir, dtype, 'cpu', maxTokens);
  const compare = (gpu: { ids: number[][] }) => PROMPTS.map((prompt, i) => {
    const a = cpu.ids[i], b = gpu.ids[i];
    const firstDifference = a.findIndex((id, j) => id !== b[j]);
    return { prompt, tokens: a.length, equal: a.length === b.length && firstDifference < 0, firstDifference };
  });
  const gpu = greedyInChild(dir, dtype, maxTokens, {});
  const prompts = compare(gpu);
  const result: Record<string, unknown> = { equal: prompts.every((p) => p.equal), prompts, cpuSeconds: cpu.seconds, gpuSeconds: gpu.seconds };
  if (!result.equal && device === 'cuda') {
    const exact = compare(greedyInChild(dir, dtype, maxTokens, { NVIDIA_TF32_OVERRIDE: '0' }));
    Object.assign(result, { equalWithoutTf32: exact.every((p) => p.equal), promptsWithoutTf32: exact });
  }
  return result as { equal: boolean; prompts: typeof prompts; equalWithoutTf32?: boolean };
}

// ---- placement ------------------------------------------------------------------------------------------------------

/** Nodes per execution provider, from the profile of a decoder's first passes (a prefill and a few decode steps). */
async function placement(dir: string, dtype: Dtype, out: string) {
  const prefix = join(out, `profile-${dir.split('/').pop()}-${dtype}`);
  // Without the packed-past session for single sequences (small models), so that the profiled session runs them.
  const decoder = await Decoder.open(dir, { dtype, device, profilePrefix: prefix, packedPast: false });
  const tokenizer = TextTokenizer.load(dir);
  try {
    await generate(decoder, tokenizer, tokenizer.encode(PROMPTS[0]), { maxTokens: 4, sampling: GREEDY });
    decoder.endProfiling();
  } finally {
    await decoder.close();
  }
  const file = readdirSync(out).map((f) => join(out, f)).find((f) => f.startsWith(prefix) && f.endsWith('.json'));
  if (!file) throw new Error(`no profile written under ${prefix}*`);
  const events = JSON.parse(readFileSync(file, 'utf8')) as { cat?: string; name?: string; args?: { op_name?: string; provider?: string } }[];
  const nodes = new Map<string, { op: string; provider: string }>();
  for (const e of events) {
    if (e.cat !== 'Node' || !e.args?.provider || !e.name?.endsWith('_kernel_time')) continue;
    nodes.set(e.name.slice(0, -'_kernel_time'.length), { op: e.args.op_name ?? '?', provider: e.args.provider });
  }
  const byProvider: Record<string, number> = {};
  const offDevice: Record<string, number> = {};
  for (const { op, provider } of nodes.values()) {
    byProvider[provider] = (byProvider[provider] ?? 0) + 1;
    if (!provider.startsWith('CUDA')) offDevice[op] = (offDevice[op] ?? 0) + 1;
  }
  rmSync(file);
  return { graphDerived: decoder.feedsAttentionBias, appendsKv: decoder.appendsKv, nodes: nodes.size, byProvider, notOnCuda: offDevice };
}

// ---- host <-> device traffic ----------------------------------------------------------------------------------------

/** Seconds per decode step (median of `steps`) of a batch on the GPU: the derived graph (attention bias fed, only the
 * new positions' keys and values fetched) against the file as it is (Optimum's presents: the whole cache fetched back
 * every pass), alternating, in one process. */
async function kvTraffic(dir: string, dtype: Dtype, batches: number[], steps: number) {
  const variants = [
    { name: 'appended KV', decoder: await Decoder.open(dir, { dtype, device }) },
    { name: 'Optimum presents', decoder: await Decoder.open(dir, { dtype, device, biasInput: false }) },
  ];
  const rows = [];
  try {
    for (const batch of batches) {
      const ms: Record<string, number[]> = {};
      for (let rep = 0; rep < 2; rep++) {
        for (const { name, decoder } of variants) {
          const caches = Array.from({ length: batch }, () => decoder.newCache());
          await decoder.forward(caches.map((cache, b) => ({ cache, tokens: Array.from({ length: 64 }, (_, i) => 1 + ((b * 31 + i * 7) % 500)) })));
          for (let step = 0; step < steps; step++) {
            const t = performance.now();
            await decoder.forward(caches.map((cache) => ({ cache, tokens: [100 + (step % 300)] })));
            (ms[name] ??= []).push(performance.now() - t);
          }
          for (const c of caches) c.clear();
        }
      }
      const row = { batch, pastPositions: [64, 64 + steps], ...Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, Number(median(v).toFixed(2))])) };
      log(`${dir.split('/').pop()} ${dtype} decode step, batch ${batch}: ${JSON.stringify(row)} ms`);
      rows.push(row);
    }
  } finally {
    for (const v of variants) await v.decoder.close();
  }
  return rows;
}

// ---- speed through HTTP ---------------------------------------------------------------------------------------------

interface Server {
  url: string;
  stop: () => Promise<void>;
}

async function startServer(serveArgs: string[], logFile: string): Promise<Server> {
  const port = 18000 + Math.floor(Math.random() * 1000);
  const child = spawn(process.execPath, ['bin/specserve.js', 'serve', '--port', String(port), ...serveArgs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const sink = createWriteStream(logFile, { flags: 'a' });
  sink.write(`$ specserve serve --port ${port} ${serveArgs.join(' ')}\n`);
  child.stdout.pipe(sink, { end: false });
  child.stderr.pipe(sink, { end: false });
  let exited: number | null = null;
  child.on('exit', (code) => (exited = code ?? -1));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (exited === null) {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
    sink.end();
  };
  for (let i = 0; ; i++) {
    if (exited !== null) throw new Error(`the server exited with ${exited} before it was healthy (see ${logFile})`);
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, stop };
    } catch { /* starting */ }
    if (i > 1200) {
      await stop();
      throw new Error(`the server was not healthy after 120 s (see ${logFile})`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function complete(url: string, model: string, prompt: string, maxTokens: number, speculative: boolean) {
  const response = await fetch(`${url}/v1/completions`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model, prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, ...(speculative ? {} : { speculative: false }) }),
  });
  const body = await response.json() as { choices?: { text: string }[]; usage?: { completion_tokens: number }; error?: { message: string } };
  if (!response.ok || !body.usage) throw new Error(`completion failed (${response.status}): ${JSON.stringify(body.error ?? body)}`);
  return { tokens: body.usage.completion_tokens, text: body.choices?.[0]?.text ?? '' };
}

/** Tokens per second of `concurrency` simultaneous requests, one round. */
async function round(url: string, model: string, concurrency: number, maxTokens: number, speculative: boolean): Promise<number> {
  const t = performance.now();
  const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => complete(url, model, PROMPTS[i % PROMPTS.length], maxTokens, speculative)));
  return results.reduce((n, r) => n + r.tokens, 0) / ((performance.now() - t) / 1000);
}


async function speedTable(target: string, dtype: Dtype, draft: string, out: string, quick: boolean,
  o: { draftDevice?: 'cpu' | 'cuda'; concurrencies?: number[]; plain?: boolean } = {}) {
  const name = target.split('/').pop()!;
  const draftDevice = o.draftDevice ?? 'cpu';
  const server = await startServer(['--target', target, '--dtype', dtype, '--draft', draft, '--draft-device', draftDevice, '--device', device,
    '--speculative-disable-by-batch-size', '0', '--max-batch', '16', '--log-level', 'info'], join(out, `serve-${name}-draft-${draftDevice}.log`));
  const rows = [];
  let sample: { text: string };
  try {
    sample = await complete(server.url, name, PROMPTS[0], 32, true);
    log(`${name}: served by specserve serve --device ${device}: ${JSON.stringify(sample.text)}`);
    const maxTokens = quick ? 32 : 128;
    const withPlain = o.plain ?? true;
    for (const concurrency of o.concurrencies ?? (quick ? [1, 4] : [1, 4, 16])) {
      if (withPlain) await round(server.url, name, concurrency, 16, false);
      await round(server.url, name, concurrency, 16, true);
      const plain: number[] = [];
      const spec: number[] = [];
      for (let r = 0; r < (quick ? 1 : 3); r++) {
        if (withPlain) plain.push(await round(server.url, name, concurrency, maxTokens, false));
        spec.push(await round(server.url, name, concurrency, maxTokens, true));
      }
      const row = {
        concurrency, ...(withPlain ? { plainTokensPerSecond: Number(median(plain).toFixed(1)) } : {}),
        specTokensPerSecond: Number(median(spec).toFixed(1)),
        ...(withPlain ? { plainRange: range(plain) } : {}), specRange: range(spec), rounds: spec.length, maxTokens, draftDevice,
      };
      log(`${name} ${dtype} c=${concurrency}, draft on ${draftDevice}: ` + (withPlain ? `plain ${median(plain).toFixed(1)} tok/s ${JSON.stringify(range(plain))}, ` : '') +
        `speculative ${row.specTokensPerSecond} tok/s ${JSON.stringify(row.specRange)}` + (withPlain ? ` (${(median(spec) / median(plain)).toFixed(2)}x)` : ''));
      rows.push(row);
    }
  } finally {
    await server.stop();
  }
  return { sample, rows };
}

// ---- the run --------------------------------------------------------------------------------------------------------

function gpuName(): string {
  const r = spawnSync('nvidia-smi', ['--query-gpu=name,driver_version,memory.total', '--format=csv,noheader'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : `no nvidia-smi (${cpus()[0]?.model ?? 'CPU'} x${cpus().length})`;
}

async function main(): Promise<number> {
  const shared = resolve(args.shared ?? join(ROOT, '../shared/models'));
  const models = resolve(args.models ?? join(ROOT, 'bench/out/gpu-models'));
  if (stage === 'build') {
    mkdirSync(models, { recursive: true });
    writeFileSync(join(models, 'BUILDING'), String(process.pid));
    buildModels(shared, models);
    return 0;
  }
  if (stage === 'kv') {
    console.log(JSON.stringify(await kvTraffic(resolve(args.model!), args.dtype as Dtype, [1, 4], Number(args['max-tokens']))));
    return 0;
  }
  if (stage === 'greedy') {
    console.log(JSON.stringify(await greedyTokens(resolve(args.model!), args.dtype as Dtype, device, Number(args['max-tokens']))));
    return 0;
  }
  if (stage !== 'run') {
    console.error('usage: gpu.bench.ts build|run --shared DIR --models DIR [--out DIR] [--device cuda|cpu] [--quick] [--budget-s N]');
    return 2;
  }
  const out = resolve(args.out ?? join(ROOT, 'bench/out/gpu'));
  mkdirSync(out, { recursive: true });
  const date = new Date().toISOString().slice(0, 10);
  const resultFile = join(out, `gpu-${date}.json`);
  const result: Record<string, unknown> & { models: Record<string, unknown>[]; errors: string[] } = {
    device: gpuName(), executionProvider: device === 'cuda' ? 'CUDAExecutionProvider' : 'CPUExecutionProvider',
    onnxruntime: (JSON.parse(readFileSync(join(ROOT, 'node_modules/onnxruntime-node/package.json'), 'utf8')) as { version: string }).version,
    node: process.version, date, command: `bench/gpu/run.sh all (${process.argv.slice(2).join(' ')})`, models: [], errors: [],
  };
  const save = () => writeFileSync(resultFile, JSON.stringify(result, null, 2) + '\n');
  const step = async <T>(what: string, f: () => Promise<T>): Promise<T | undefined> => {
    if (Date.now() - started > budgetMs) {
      result.errors.push(`${what}: skipped, over the time budget`);
      save();
      return undefined;
    }
    try {
      return await f();
    } catch (err) {
      const message = `${what}: ${(err as Error).stack ?? err}`;
      log(`FAILED ${message}`);
      result.errors.push(message.split('\n').slice(0, 6).join('\n'));
      return undefined;
    } finally {
      save();
    }
  };
  log(`${result.device}; onnxruntime-node ${result.onnxruntime}; ${device}`);
  const names = args.quick ? ['stories260K', 'stories260K-draft', 'wide-100m'] : ['stories260K', 'stories260K-draft', 'wide-100m', 'wide-1b'];
  await step('build models', () => waitForModels(models, shared, names));
  const dir = (name: string) => join(models, name);
  const entry = (name: string, dtype: Dtype) => {
    const config = fromHfConfig(JSON.parse(readFileSync(join(dir(name), 'config.json'), 'utf8')));
    const e: Record<string, unknown> = { name, parameters: parameterCount(config), dtype };
    result.models.push(e);
    return e;
  };

  for (const name of ['stories260K', 'wide-100m']) {
    const e = entry(name, 'fp32');
    const eq = await step(`greedy ${name}`, () => greedyEquality(dir(name), 'fp32', 64));
    if (eq) {
      Object.assign(e, { greedyEqualsCpu: eq.equal, greedy: eq });
      log(`${name} fp32 greedy on ${device} equals CPU: ${eq.equal} (${eq.prompts.map((p) => p.equal ? 'same' : `differs at ${p.firstDifference}`).join(', ')})` +
        (eq.equalWithoutTf32 === undefined ? '' : `; without TF32: ${eq.equalWithoutTf32}`));
    }
    const where = await step(`placement ${name}`, () => placement(dir(name), 'fp32', out));
    if (where) {
      e.placement = where;
      log(`${name} fp32 placement: ${JSON.stringify(where)}`);
    }
  }
  const draft = dir('stories260K-draft');
  for (const name of args.quick ? ['wide-100m'] : ['wide-100m', 'wide-1b']) {
    const e = entry(name, 'fp16');
    if (name === 'wide-1b') {
      const where = await step(`placement ${name}`, () => placement(dir(name), 'fp16', out));
      if (where) e.placement = where;
      if (where) log(`${name} fp16 placement: ${JSON.stringify(where)}`);
    }
    const speed = await step(`speed ${name}`, () => speedTable(dir(name), 'fp16', draft, out, args.quick!));
    if (speed) Object.assign(e, { rows: speed.rows, sampleCompletion: speed.sample.text });
  }
  if (!args.quick) {
    const big = result.models.find((m) => m.name === 'wide-1b' && m.dtype === 'fp16')!;
    const traffic = await step('kv traffic wide-1b', () => kvTraffic(dir('wide-1b'), 'fp16', [1, 16], 64));
    if (traffic) big.decodeStepMs = traffic;
    const onGpu = await step('draft on the GPU', () => speedTable(dir('wide-1b'), 'fp16', draft, out, false,
      { draftDevice: device, concurrencies: [1, 4], plain: false }));
    if (onGpu) big.draftOnGpuRows = onGpu.rows;
  }
  save();
  log(`wrote ${resultFile}${result.errors.length ? ` with ${result.errors.length} errors` : ''}`);
  return result.errors.length ? 1 : 0;
}

process.exitCode = await main();
