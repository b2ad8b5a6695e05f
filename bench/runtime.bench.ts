// npm run bench:runtime -- prefill and decode tokens/s of a bench-size random model, the cost of one forward over
// 1, 2, 4, 8 new positions relative to 1 (what speculative decoding lives on), and the cost of KV rollback.
import { Decoder } from '../src/runtime/decoder.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeFolder } from '../src/quant/forge.ts';
import { argmax } from '../src/runtime/sampling.ts';
import { fmt, machine, median, randomBench } from './lib.ts';

const preset = process.argv[2] ?? 'bench-100m';
const dir = randomBench(preset, ['int8']);
if (!existsSync(join(dir, 'onnx/model_fp16.onnx'))) quantizeFolder(dir, 'fp16');
const PAST = 128;
const REPEATS = 15;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

console.log(`## bench:runtime — ${preset} (${machine()})\n`);
console.log('| dtype | prefill 128 tok/s | decode tok/s | fwd 1 pos ms | 2 pos | 4 pos | 8 pos | rollback 4 + next step ms | greedy agreement with fp32 |');
console.log('|---|---|---|---|---|---|---|---|---|');
// fp32's greedy continuation of the prompt, against which each dtype's next-token argmax is compared (teacher-forced).
let reference: number[] = [];
for (const dtype of ['fp32', 'fp16', 'int8'] as const) {
  const d = await Decoder.open(dir, { dtype });
  const prompt = Array.from({ length: PAST }, (_, i) => 3 + ((i * 7) % 500));
  const prefill: number[] = [];
  for (let r = 0; r < 3; r++) prefill.push(await time(() => d.forward([{ cache: d.newCache(), tokens: prompt }])));
  const cache = d.newCache();
  await d.forward([{ cache, tokens: prompt }]);
  const costs: Record<number, number[]> = { 1: [], 2: [], 4: [], 8: [] };
  for (let r = 0; r < REPEATS; r++) {
    for (const n of [1, 2, 4, 8]) {
      costs[n].push(await time(() => d.forward([{ cache, tokens: Array(n).fill(5) }])));
      cache.rollback(PAST);
    }
  }
  // Decode: 64 plain steps from the prompt.
  const decodeCache = d.newCache();
  await d.forward([{ cache: decodeCache, tokens: prompt }]);
  const decode = await time(async () => {
    for (let i = 0; i < 64; i++) await d.forward([{ cache: decodeCache, tokens: [7] }]);
  });
  // Rollback: append 4, roll back all 4, next 1-token step (includes the lazy compaction), vs a plain 1-token step.
  const rollback: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    await d.forward([{ cache, tokens: [5, 5, 5, 5] }]);
    cache.rollback(PAST);
    rollback.push(await time(() => d.forward([{ cache, tokens: [5] }])));
    cache.rollback(PAST);
  }
  const one = median(costs[1]);
  // Greedy agreement: fp32 generates 64 tokens; every dtype predicts each of them from the same prefix in one pass.
  if (dtype === 'fp32') {
    const c = d.newCache();
    let next = prompt;
    for (let i = 0; i < 64; i++) {
      const [l] = await d.forward([{ cache: c, tokens: next }]);
      reference.push(argmax(l[l.length - 1]));
      next = [reference[reference.length - 1]];
    }
  }
  const [rows] = await d.forward([{ cache: d.newCache(), tokens: [...prompt, ...reference.slice(0, -1)] }]);
  const agree = reference.filter((t, i) => argmax(rows[prompt.length - 1 + i]) === t).length;
  console.log(`| ${dtype} | ${fmt(PAST / (median(prefill) / 1000), 0)} | ${fmt(64 / (decode / 1000), 1)} | ${fmt(one, 2)} | ` +
    `${fmt(median(costs[2]) / one, 2)}x | ${fmt(median(costs[4]) / one, 2)}x | ${fmt(median(costs[8]) / one, 2)}x | ${fmt(median(rollback), 2)} | ${agree}/64 |`);
  await d.close();
}
console.log(`\nforward cost ratios are medians of ${REPEATS} runs at past length ${PAST}, batch 1, default threads.`);
