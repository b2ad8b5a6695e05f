// npm run bench:llamacpp -- single-stream greedy decoding of stories260K: llama.cpp (node-llama-cpp 3.21.1, 1
// thread, the GGUF files of ../shared/models) against our server over HTTP (1 thread), plain and with the distilled
// draft, measured in one run.
import { join } from 'node:path';
import { llamaCppRun } from './llamacpp-lib.ts';
import { loadLlamaCpp } from './peer-engines.ts';
import { fmt, machine, median, SHARED, stories, storiesDraft } from './lib.ts';
import { spawnServer } from './server-lib.ts';

const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];
const MAX_TOKENS = 200;

const llama = await (await loadLlamaCpp()).getLlama({ gpu: false });

async function llamaCpp(draft: boolean): Promise<number> {
  return (await llamaCppRun(llama, join(SHARED, 'stories260K/stories260K.gguf'), { threads: 1, draft, prompts: PROMPTS, maxTokens: MAX_TOKENS })).tps;
}

async function ours(url: string, speculative: boolean | { num_tokens: number }): Promise<{ tps: number; accepted: number }> {
  let tokens = 0;
  let accepted = 0;
  const started = performance.now();
  for (const prompt of PROMPTS) {
    const r = await (await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'stories260K', prompt, max_tokens: MAX_TOKENS, temperature: 0, speculative }) })).json();
    tokens += r.usage.completion_tokens;
    accepted += r.usage.completion_tokens_details.accepted_prediction_tokens;
  }
  return { tps: tokens / ((performance.now() - started) / 1000), accepted };
}

const { url, stop } = await spawnServer(['--target', stories(), '--draft', storiesDraft(), '--threads', '1']);
await ours(url, false); // warm-up

// Rounds alternate every row, so that a slow stretch of this shared machine hits all rows alike; each row reports
// its median tokens/s and the median of its per-round ratios.
const ROUNDS = Number(process.env.LLAMACPP_ROUNDS ?? 3);
const KS = [1, 2, 3, 4, 6, 8];
const rows: { label: string; mode: string; run: () => Promise<number> }[] = [
  { label: 'llama.cpp (node-llama-cpp 3.21.1, 1 thread)', mode: 'plain', run: () => llamaCpp(false) },
  { label: 'llama.cpp', mode: 'draft stories260K-draft, up to 4', run: () => llamaCpp(true) },
  { label: 'specserve over HTTP (1 thread)', mode: 'plain', run: async () => (await ours(url, false)).tps },
  ...KS.map((k) => ({ label: 'specserve', mode: `draft, k=${k}`, run: async () => (await ours(url, { num_tokens: k })).tps })),
  { label: 'specserve', mode: 'draft, adaptive k <= 4', run: async () => (await ours(url, true)).tps },
];
const results = rows.map(() => [] as number[]);
for (let round = 0; round < ROUNDS; round++) {
  for (const [i, row] of rows.entries()) results[i].push(await row.run());
}
const ratio = (i: number, base: number) => median(results[i].map((x, round) => x / results[base][round]));

console.log(`## bench:llamacpp — stories260K, greedy, ${PROMPTS.length} prompts x ${MAX_TOKENS} tokens, single stream, ` +
  `median of ${ROUNDS} alternating rounds (${machine()})\n`);
console.log('| engine | mode | tokens/s | vs llama.cpp plain | vs our plain |');
console.log('|---|---|---|---|---|');
rows.forEach((row, i) => {
  const ours = i >= 2 ? `${fmt(ratio(i, 2), 2)}x` : '-';
  console.log(`| ${row.label} | ${row.mode} | ${fmt(median(results[i]), 0)} | ${fmt(ratio(i, 0), 2)}x | ${ours} |`);
});
stop();
process.exit(0);
