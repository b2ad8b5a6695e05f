// npm run bench:runtime -- prefill and decode tokens/s of a bench-size random model in fp32, fp16 and int8, the cost
// of one forward over 1, 2, 4, 5, 8 new positions relative to 1 (what speculative decoding lives on), the cost of the
// step after a rollback, and greedy agreement with fp32. All three dtypes are loaded at once and measured in
// alternating rounds, so that the ratios between them come from the same stretch of this noisy machine.
import { Decoder } from '../src/runtime/decoder.ts';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeFolder } from '../src/forge/forge.ts';
import { argmax } from '../src/runtime/sampling.ts';
import { fmt, machine, median, randomBench } from './lib.ts';

const preset = process.argv[2] ?? 'bench-100m';
const dir = randomBench(preset, ['int8']);
if (!existsSync(join(dir, 'onnx/model_fp16.onnx'))) quantizeFolder(dir, 'fp16');
const PAST = 128;
const ROUNDS = Number(process.env.RUNTIME_ROUNDS ?? 5);
const POSITIONS = [1, 2, 4, 5, 8];
const DECODE_STEPS = 32;
const DTYPES = ['fp32', 'fp16', 'int8'] as const;

async function time(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return performance.now() - t;
}

const prompt = Array.from({ length: PAST }, (_, i) => 3 + ((i * 7) % 500));
const decoders = await Promise.all(DTYPES.map((dtype) => Decoder.open(dir, { dtype })));
type Sample = { prefill: number; decode: number; costs: Record<number, number>; rollback: number };
const samples: Sample[][] = DTYPES.map(() => []);

for (let round = 0; round < ROUNDS; round++) {
  for (const [di, d] of decoders.entries()) {
    const prefill = await time(() => d.forward([{ cache: d.newCache(), tokens: prompt }]));
    const cache = d.newCache();
    await d.forward([{ cache, tokens: prompt }]);
    const costs: Record<number, number> = {};
    for (const n of POSITIONS) {
      const runs: number[] = [];
      for (let r = 0; r < 3; r++) {
        runs.push(await time(() => d.forward([{ cache, tokens: Array(n).fill(5) }])));
        cache.rollback(PAST);
      }
      costs[n] = median(runs);
    }
    // The step after appending 4 positions and rolling all 4 back (they stay as masked holes until squeezed out).
    await d.forward([{ cache, tokens: [5, 5, 5, 5] }]);
    cache.rollback(PAST);
    const rollback = await time(() => d.forward([{ cache, tokens: [5] }]));
    const decodeCache = d.newCache();
    await d.forward([{ cache: decodeCache, tokens: prompt }]);
    const decode = await time(async () => {
      for (let i = 0; i < DECODE_STEPS; i++) await d.forward([{ cache: decodeCache, tokens: [7] }]);
    });
    samples[di].push({ prefill, decode, costs, rollback });
  }
}

// Greedy agreement: fp32 generates 64 tokens; every dtype predicts each of them from the same prefix in one pass.
const reference: number[] = [];
{
  const d = decoders[0];
  const c = d.newCache();
  let next = prompt;
  for (let i = 0; i < 64; i++) {
    const [l] = await d.forward([{ cache: c, tokens: next }]);
    reference.push(argmax(l[l.length - 1]));
    next = [reference[reference.length - 1]];
  }
}

console.log(`## bench:runtime — ${preset}, batch 1, default threads, past ${PAST}, medians of ${ROUNDS} alternating rounds (${machine()})\n`);
console.log(`| dtype | prefill ${PAST} tok/s | decode tok/s | decode vs fp32 | fwd 1 pos ms | ${POSITIONS.slice(1).map((n) => `${n} pos`).join(' | ')} | step after rollback 4, ms | greedy agreement with fp32 |`);
console.log(`|---|---|---|---|---|${POSITIONS.slice(1).map(() => '---|').join('')}---|---|`);
for (const [di, d] of decoders.entries()) {
  const s = samples[di];
  const one = median(s.map((x) => x.costs[1]));
  const [rows] = await d.forward([{ cache: d.newCache(), tokens: [...prompt, ...reference.slice(0, -1)] }]);
  const agree = reference.filter((t, i) => argmax(rows[prompt.length - 1 + i]) === t).length;
  const decodeRatio = median(s.map((x, round) => samples[0][round].decode / x.decode));
  const ratios = POSITIONS.slice(1).map((n) => `${fmt(median(s.map((x) => x.costs[n] / x.costs[1])), 2)}x`);
  console.log(`| ${DTYPES[di]} | ${fmt(PAST / (median(s.map((x) => x.prefill)) / 1000), 0)} | ` +
    `${fmt(DECODE_STEPS / (median(s.map((x) => x.decode)) / 1000), 1)} | ${fmt(decodeRatio, 2)}x | ${fmt(one, 2)} | ${ratios.join(' | ')} | ` +
    `${fmt(median(s.map((x) => x.rollback)), 2)} | ${agree}/64 |`);
}
console.log('\nN-position costs: per round the median of 3 passes after the same 128-position past, relative to 1 position in ' +
  'that round; the table gives the median of the per-round ratios.');
for (const d of decoders) await d.close();
