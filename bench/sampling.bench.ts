// npm run bench:sampling -- what turning a row of logits into the request's sampling distribution costs per token:
// runtime/sampling.ts probabilities (softmax in JS, then top-k / top-p / min-p) against the full-vocabulary sort it
// replaced, and the engine's path, runtime/batch-softmax.ts rowProbabilities (the softmax in one ONNX Runtime run
// from 4096 tokens on), for stories260K's vocabulary, Llama 2's and Qwen 2's sizes. Synthetic logits drawn from
// N(0, s^2): s = 2 is flat (a nucleus of thousands of tokens), s = 6 peaked (a few dozen), as a model's usually are.
import { probabilities, type SamplingParams } from '../src/runtime/sampling.ts';
import { Xoshiro128 } from '../src/runtime/rng.ts';
import { fullSortProbabilities } from '../test/helpers/full-sort-sampling.ts';
import { rowProbabilities } from '../src/runtime/batch-softmax.ts';
import { fmt, machine, median } from './lib.ts';

const ROUNDS = 5;
const RULES: [string, SamplingParams][] = [
  ['temperature 0.8 alone (no sort either way)', { temperature: 0.8, topK: 0, topP: 1, minP: 0 }],
  ['top_p 0.9', { temperature: 0.8, topK: 0, topP: 0.9, minP: 0 }],
  ['top_k 40', { temperature: 0.8, topK: 40, topP: 1, minP: 0 }],
  ['min_p 0.05', { temperature: 0.8, topK: 0, topP: 1, minP: 0.05 }],
];

function gaussianLogits(V: number, spread: number, rng: Xoshiro128): Float32Array {
  return Float32Array.from({ length: V }, () => spread * Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next()));
}

async function microseconds(run: () => unknown, budgetMs: number): Promise<number> {
  let n = 0;
  const started = performance.now();
  while (performance.now() - started < budgetMs) {
    await run();
    n++;
  }
  return ((performance.now() - started) / n) * 1000;
}

console.log(`## bench:sampling (${machine()})\n`);
console.log(`Microseconds per row of logits, medians of ${ROUNDS} alternating rounds.\n`);
console.log('| vocabulary | logits | rule | tokens kept | full sort us | bucketed us | speed-up | engine path (batch-softmax) us | vs full sort |');
console.log('|---|---|---|---|---|---|---|---|---|');
const rng = new Xoshiro128(1);
for (const V of [512, 32000, 151936]) {
  for (const spread of [2, 6]) {
    const logits = gaussianLogits(V, spread, rng);
    for (const [name, rule] of RULES) {
      const kept = probabilities(logits, rule).reduce((a, x) => a + (x > 0 ? 1 : 0), 0);
      const slow: number[] = [];
      const fast: number[] = [];
      const engine: number[] = [];
      const budget = V > 100000 ? 400 : 150;
      for (let r = 0; r < ROUNDS; r++) {
        slow.push(await microseconds(() => fullSortProbabilities(logits, rule), budget));
        fast.push(await microseconds(() => probabilities(logits, rule), budget));
        engine.push(await microseconds(() => rowProbabilities([logits], [rule]), budget));
      }
      const ratio = median(slow.map((s, i) => s / fast[i]));
      const engineRatio = median(slow.map((s, i) => s / engine[i]));
      console.log(`| ${V} | N(0, ${spread}^2) | ${name} | ${kept} | ${fmt(median(slow), 0)} | ${fmt(median(fast), 0)} | ${fmt(ratio, 1)}x | ` +
        `${fmt(median(engine), 0)} | ${fmt(engineRatio, 1)}x |`);
    }
  }
}
