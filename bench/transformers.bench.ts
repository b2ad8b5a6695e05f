// npm run bench:transformers -- plain greedy decoding of the same ONNX model folder by transformers.js
// (@huggingface/transformers, model.generate) and by specserve (the engine in-process, and the server over HTTP),
// 1 ONNX Runtime thread each, alternating rounds in one run. Also checks that both produce the same tokens: a
// third-party consumer reading our forge's folder is a test of the folder too.
import { resolve } from 'node:path';
import { Decoder } from '../src/runtime/decoder.ts';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { Engine } from '../src/speculative/engine.ts';
import { fmt, machine, median, run, stories } from './lib.ts';
import { loadTransformers } from './peer-engines.ts';
import { spawnServer } from './server-lib.ts';

const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];
const MAX_TOKENS = Number(process.env.TRANSFORMERS_TOKENS ?? 200);
// Nine rounds: with five, one slow round of either side moved the median ratio by ~0.1 on this machine.
const ROUNDS = Number(process.env.TRANSFORMERS_ROUNDS ?? 9);

const { AutoModelForCausalLM, AutoTokenizer, env } = await loadTransformers();
const dir = stories();
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = resolve(dir, '..');
const name = dir.split('/').pop()!;
const hfTokenizer = await AutoTokenizer.from_pretrained(name);
const hfModel = await AutoModelForCausalLM.from_pretrained(name, {
  dtype: 'fp32', device: 'cpu', session_options: { intraOpNumThreads: 1, interOpNumThreads: 1 },
});

async function transformersJs(): Promise<{ tps: number; outputs: number[][] }> {
  let tokens = 0;
  const outputs: number[][] = [];
  const started = performance.now();
  for (const prompt of PROMPTS) {
    const inputs = hfTokenizer(prompt);
    const out = await hfModel.generate({ ...inputs, max_new_tokens: MAX_TOKENS, do_sample: false, repetition_penalty: 1 }) as { tolist(): bigint[][] };
    const ids = out.tolist()[0].map(Number);
    const generated = ids.slice(Number(inputs.input_ids.dims[1]));
    outputs.push(generated);
    tokens += generated.length;
  }
  return { tps: tokens / ((performance.now() - started) / 1000), outputs };
}

const target = await Decoder.open(dir, { threads: 1 });
const tokenizer = TextTokenizer.load(dir);
const engine = new Engine({ target, tokenizer, proposer: null, numSpeculativeTokens: 0, adaptiveDraftLength: false, maxBatch: 1, maxQueue: 8 });

async function ours(): Promise<{ tps: number; outputs: number[][] }> {
  let tokens = 0;
  const outputs: number[][] = [];
  const started = performance.now();
  for (const [i, prompt] of PROMPTS.entries()) {
    const r = await run(engine, { promptIds: tokenizer.encode(prompt), maxTokens: MAX_TOKENS, stop: [], seed: i,
      sampling: { temperature: 0, topK: 0, topP: 1, minP: 0 } });
    // transformers.js returns the EOS token it stopped at; ours does not count it as text.
    outputs.push(r.tokens);
    tokens += r.tokens.length;
  }
  return { tps: tokens / ((performance.now() - started) / 1000), outputs };
}

const { url, stop } = await spawnServer(['--target', dir, '--threads', '1']);

async function overHttp(): Promise<number> {
  let tokens = 0;
  const started = performance.now();
  for (const prompt of PROMPTS) {
    const r = await (await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: name, prompt, max_tokens: MAX_TOKENS, temperature: 0 }) })).json();
    tokens += r.usage.completion_tokens;
  }
  return tokens / ((performance.now() - started) / 1000);
}

await transformersJs(); // warm-up
await ours();
await overHttp();
const rows = { hf: [] as number[], engine: [] as number[], http: [] as number[] };
let same = 0;
let compared = 0;
for (let round = 0; round < ROUNDS; round++) {
  const hf = await transformersJs();
  const mine = await ours();
  rows.hf.push(hf.tps);
  rows.engine.push(mine.tps);
  rows.http.push(await overHttp());
  hf.outputs.forEach((ids, i) => {
    compared++;
    const theirs = ids[ids.length - 1] === 2 ? ids.slice(0, -1) : ids;
    if (theirs.length === mine.outputs[i].length && theirs.every((t, j) => t === mine.outputs[i][j])) same++;
  });
}
stop();

const hf = median(rows.hf);
const vs = (mine: number[]) => median(mine.map((x, round) => x / rows.hf[round]));
console.log(`## bench:transformers — stories260K fp32, greedy, ${PROMPTS.length} prompts x up to ${MAX_TOKENS} tokens, ` +
  `median of ${ROUNDS} alternating rounds; ratios are medians of per-round ratios (${machine()})\n`);
console.log('| engine | tokens/s | vs transformers.js |');
console.log('|---|---|---|');
console.log(`| transformers.js 4.3.2 \`generate()\` (onnxruntime-node 1.30, 1 thread) | ${fmt(hf, 0)} | 1.00x |`);
console.log(`| specserve engine, in-process (1 thread) | ${fmt(median(rows.engine), 0)} | ${fmt(vs(rows.engine), 2)}x |`);
console.log(`| specserve server over HTTP (1 thread) | ${fmt(median(rows.http), 0)} | ${fmt(vs(rows.http), 2)}x |`);
console.log(`\nper round (transformers.js / engine / HTTP tok/s): ${rows.hf.map((h, i) => `${fmt(h, 0)} / ${fmt(rows.engine[i], 0)} / ${fmt(rows.http[i], 0)}`).join('; ')}`);
console.log(`\nidentical greedy outputs: ${same} of ${compared} generations`);
process.exit(0);
