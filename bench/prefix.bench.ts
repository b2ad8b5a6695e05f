// npm run bench:prefix -- automatic prefix caching on the widened 100M pair (wide-100m + stories260K-draft), through
// HTTP (`specserve serve`, defaults):
//  1. Time to first token of a request whose ~400-token prefix was never seen, then of one that shares it (another
//     question after the same long system prompt), alternating rounds, each round a new prefix.
//  2. Running streams while a long new prompt arrives: their inter-token gaps (median, p99) before it and during its
//     prefill. The prompt arrives once the streams have run for a while (the goodput policy has settled on its draft
//     length), so that "before" is their usual rhythm and not its first explorations.
//  3. Running streams when another finishes (its cache kept by the prefix cache, the batch's rows laid out anew): four
//     streams of 150, 250, 350 and 450 tokens, the worst gap of those still running within 300 ms of each finish.
// PREFIX_ROUNDS, PREFIX_ARRIVALS, PREFIX_FINISH_ROUNDS, PREFIX_CHUNK (--prefill-chunk-tokens), PREFIX_SERVER_ARGS (more
// server flags, space-separated).
import { join } from 'node:path';
import { widenModel } from '../src/forge/forge.ts';
import { benchModel, fmt, machine, median, SHARED, storiesDraft } from './lib.ts';
import { gapsAround, spawnServer, streamCompletion } from './server-lib.ts';

const ROUNDS = Number(process.env.PREFIX_ROUNDS ?? 5);
const ARRIVALS = Number(process.env.PREFIX_ARRIVALS ?? 5);
const FINISH_ROUNDS = Number(process.env.PREFIX_FINISH_ROUNDS ?? 3);
const wide100m = () => benchModel('wide-100m', (dir) =>
  widenModel(join(SHARED, 'stories260K/stories260K.bin'), dir, { preset: 'wide-100m', tokenizer: join(SHARED, 'stories260K/tok512.bin'), dtypes: ['fp32'] }));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

// A ~400-token prefix of stories260K's vocabulary (its pieces are short: about one token per 1.5 characters).
const prefix = (round: number) => `Story ${round}. ` + 'Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her dog Max. '.repeat(10);

const { url, stop } = await spawnServer(['--served-model-name', 'bench', '--target', wide100m(), '--draft', storiesDraft(),
  ...(process.env.PREFIX_CHUNK ? ['--prefill-chunk-tokens', process.env.PREFIX_CHUNK] : []), ...(process.env.PREFIX_SERVER_ARGS ?? '').split(' ').filter(Boolean)]);
try {
  const stream = (prompt: string, maxTokens: number) => streamCompletion(url, {
    model: 'bench', prompt, max_tokens: maxTokens, temperature: 0, ignore_eos: true, stream_options: { include_usage: true },
  });

  console.log(`## bench:prefix — automatic prefix caching (${machine()})\n`);
  await stream(prefix(-1) + 'Warm up.', 4);
  const cold: number[] = [];
  const warm: number[] = [];
  let promptTokens = 0;
  let cached = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const a = await stream(`${prefix(round)}What did Lily do?`, 4);
    const b = await stream(`${prefix(round)}Where was Max?`, 4);
    cold.push(a.times[0] - a.started);
    warm.push(b.times[0] - b.started);
    promptTokens = b.usage?.prompt_tokens ?? 0;
    cached = b.usage?.prompt_tokens_details?.cached_tokens ?? 0;
  }
  const ratios = cold.map((c, i) => c / warm[i]);
  console.log(`### Time to first token, wide-100m + draft, a ${promptTokens}-token prompt of which the second request shares ${cached} (${ROUNDS} rounds)\n`);
  console.log('| request | TTFT ms, median [range] |');
  console.log('|---|---|');
  console.log(`| first (prefix never seen) | ${fmt(median(cold), 1)} [${fmt(Math.min(...cold), 1)}-${fmt(Math.max(...cold), 1)}] |`);
  console.log(`| second (prefix cached) | ${fmt(median(warm), 1)} [${fmt(Math.min(...warm), 1)}-${fmt(Math.max(...warm), 1)}] |`);
  console.log(`\nFirst / second: ${fmt(median(ratios), 1)}x [${fmt(Math.min(...ratios), 1)}-${fmt(Math.max(...ratios), 1)}x] (target >= 5x).\n`);

  // Running streams while a long new prompt arrives, ARRIVALS times (each prompt new: nothing cached).
  const rows: { before: number[]; during: number[]; ttft: number; prompt: number }[] = [];
  for (let r = 0; r < ARRIVALS; r++) {
    const running = Array.from({ length: 4 }, (_, i) => stream(`Tom and Sue ${r} ${i}`, 480));
    await new Promise((res) => setTimeout(res, 2500));
    const arrival = performance.now();
    const long = await stream(`${prefix(1000 + r)}And then?`, 1);
    // "Before": the last 1.5 s, once the streams have settled.
    rows.push({ ...gapsAround(await Promise.all(running), arrival, long.times[0], arrival - 1500), ttft: long.times[0] - arrival, prompt: long.usage?.prompt_tokens ?? 0 });
  }
  console.log(`### Running streams while a ${rows[0].prompt}-token prompt arrives (4 streams, wide-100m + draft, ${ARRIVALS} arrivals)\n`);
  console.log('| arrival | gaps before: n, median, p99 ms | during its prefill: n, median, p99, max ms | p99 during / median before | its TTFT ms |');
  console.log('|---|---|---|---|---|');
  const ratios99 = rows.map(({ before, during }) => pct(during, 99) / median(before));
  rows.forEach(({ before, during, ttft }, r) => console.log(`| ${r + 1} | ${before.length}, ${fmt(median(before), 1)}, ${fmt(pct(before, 99), 1)} | ` +
    `${during.length}, ${fmt(median(during), 1)}, ${fmt(pct(during, 99), 1)}, ${fmt(Math.max(...during), 1)} | ${fmt(ratios99[r], 1)}x | ${fmt(ttft, 0)} |`));
  console.log(`\np99 of the gaps during the prefill / their median before it: ${fmt(median(ratios99), 1)}x ` +
    `[${fmt(Math.min(...ratios99), 1)}-${fmt(Math.max(...ratios99), 1)}x] (target: within 3x).`);

  // Running streams when another finishes, FINISH_ROUNDS times.
  const LENGTHS = [150, 250, 350, 450];
  const worst: number[][] = LENGTHS.slice(0, -1).map(() => []);
  for (let r = 0; r < FINISH_ROUNDS; r++) {
    const streams = await Promise.all(LENGTHS.map((n, i) => stream(`Tom and Sue ${2000 + r} ${i}`, n)));
    const ends = streams.map((x) => x.times[x.times.length - 1]);
    LENGTHS.slice(0, -1).forEach((_, f) => {
      let w = 0;
      for (const x of streams.slice(f + 1)) {
        x.times.forEach((t, i) => {
          if (i > 0 && t > ends[f] - 5 && x.times[i - 1] < ends[f] + 300) w = Math.max(w, t - x.times[i - 1]);
        });
      }
      worst[f].push(w);
    });
  }
  if (FINISH_ROUNDS > 0) {
    console.log(`\n### Running streams when another finishes (4 streams of ${LENGTHS.join('/')} tokens, ${FINISH_ROUNDS} rounds)\n`);
    console.log('| finish | streams still running | worst gap within 300 ms of it, ms: median [range] |');
    console.log('|---|---|---|');
    worst.forEach((w, f) => console.log(`| ${f + 1} (${LENGTHS[f]} tokens) | ${LENGTHS.length - 1 - f} | ${fmt(median(w), 0)} [${fmt(Math.min(...w), 0)}-${fmt(Math.max(...w), 0)}] |`));
  }
} finally {
  stop();
}
process.exit(0);
