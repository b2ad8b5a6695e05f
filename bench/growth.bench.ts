// npm run bench:growth -- decode steps of a growing batch on the widened 100M model (wide-100m: a 78M model's cost),
// with ONNX Runtime's memory patterns on (its default) and off (the runtime's default for models of 64 MB and more,
// runtime/execution-provider.ts): a batch of 4 sequences decodes one token a step from 8 to GROWTH_STEPS + 8
// positions, so that its KV capacity grows and the pass's shapes change every so often, as in serving. Each round opens
// a fresh decoder (a new session and arena: the first time a shape is met is what serving keeps meeting), the two
// settings alternating. Prints the median, p99 and worst step and the steps over twice the median.
import { join } from 'node:path';
import { Decoder } from '../src/runtime/decoder.ts';
import { widenModel } from '../src/forge/forge.ts';
import { benchModel, fmt, machine, median, SHARED } from './lib.ts';

const ROUNDS = Number(process.env.GROWTH_ROUNDS ?? 3);
const STEPS = Number(process.env.GROWTH_STEPS ?? 470);
const ROWS = 4;
const wide100m = benchModel('wide-100m', (dir) =>
  widenModel(join(SHARED, 'stories260K/stories260K.bin'), dir, { preset: 'wide-100m', tokenizer: join(SHARED, 'stories260K/tok512.bin'), dtypes: ['fp32'] }));

async function round(memoryPatterns: boolean): Promise<number[]> {
  const decoder = await Decoder.open(wide100m, { memoryPatterns });
  try {
    const caches = Array.from({ length: ROWS }, () => decoder.newCache());
    await decoder.forward(caches.map((cache, b) => ({ cache, tokens: [1, 5 + b, 9, 12, 30, 40, 50, 60], lastOnly: true })));
    const times: number[] = [];
    for (let i = 0; i < STEPS; i++) {
      const t = performance.now();
      await decoder.forward(caches.map((cache) => ({ cache, tokens: [7 + (i % 400)] })));
      times.push(performance.now() - t);
    }
    for (const c of caches) c.clear();
    return times;
  } finally {
    await decoder.close();
  }
}

const p99 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(0.99 * (xs.length - 1))];
const modes = [{ name: 'memory patterns on (ONNX Runtime default)', on: true }, { name: 'off (runtime default, >= 64 MB)', on: false }];
const results = modes.map(() => ({ median: [] as number[], p99: [] as number[], max: [] as number[], slow: [] as number[] }));
for (let r = 0; r < ROUNDS; r++) {
  for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
    const times = await round(modes[i].on);
    const m = median(times);
    results[i].median.push(m);
    results[i].p99.push(p99(times));
    results[i].max.push(Math.max(...times));
    results[i].slow.push(times.filter((t) => t > 2 * m).length);
  }
}
const range = (xs: number[], digits = 1) => `${fmt(median(xs), digits)} [${fmt(Math.min(...xs), digits)}-${fmt(Math.max(...xs), digits)}]`;
console.log(`## bench:growth (${machine()})\n`);
console.log(`wide-100m fp32, ${ROWS} rows decoding from 8 to ${STEPS + 8} positions, ${ROUNDS} rounds (a fresh decoder each), median [range] over rounds:\n`);
console.log('| memory patterns | step median ms | p99 ms | worst ms | steps over 2x median |');
console.log('|---|---|---|---|---|');
modes.forEach((m, i) => console.log(`| ${m.name} | ${range(results[i].median)} | ${range(results[i].p99)} | ${range(results[i].max)} | ${range(results[i].slow, 0)} |`));
process.exit(0);
