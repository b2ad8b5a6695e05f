// Goodput: the server's defaults (the goodput policy choosing k per step) against `"speculative": false` on the same
// server, through HTTP, at concurrency 1..16, alternating rounds in one run; greedy and temperature 0.8. On the
// widened pair (wide-100m: stories260K's function at a 78M model's cost, so the distilled draft keeps its acceptance)
// and on stories260K itself (tiny: framework overhead). Prints median [range] of tokens per second and of the
// per-round ratio, the k shares the policy chose (from /metrics), and writes bench/results/goodput-DATE.json.
//
//   npm run bench:goodput                       # both pairs, c = 1 2 4 8 16, 3 rounds
//   GOODPUT_PAIRS=wide-100m GOODPUT_C=1,16 GOODPUT_ROUNDS=2 GOODPUT_FORCED=4 npm run bench:goodput
// GOODPUT_FORCED=K adds a column with speculation forced at k = K ({"num_tokens": K}); GOODPUT_LLAMACPP=0 skips the
// side by side with llama.cpp on the widened pair (goodput-llamacpp.ts); GOODPUT_SERVER_ARGS adds flags to the server's
// command line (e.g. "--speculative-disable-by-batch-size 2", to see what an attached but idle proposer costs).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { widenModel } from '../src/forge/forge.ts';
import { benchModel, fmt, machine, median, SHARED, stories, storiesDraft } from './lib.ts';
import { spawnServer } from './server-lib.ts';
import { llamaCppSideBySide } from './goodput-llamacpp.ts';
import { loadLlamaCpp } from './peer-engines.ts';

const list = (v: string | undefined, d: string) => (v ?? d).split(',').map((x) => x.trim()).filter(Boolean);
const CONCURRENCY = list(process.env.GOODPUT_C, '1,2,4,8,16').map(Number);
const ROUNDS = Number(process.env.GOODPUT_ROUNDS ?? 3);
const TOKENS = Number(process.env.GOODPUT_TOKENS ?? 96);
const PAIRS = list(process.env.GOODPUT_PAIRS, 'wide-100m,stories260K');
const TEMPERATURES = list(process.env.GOODPUT_TEMPERATURES, '0,0.8').map(Number);
const FORCED = process.env.GOODPUT_FORCED ? Number(process.env.GOODPUT_FORCED) : null;
const LLAMACPP = process.env.GOODPUT_LLAMACPP !== '0';
// llama.cpp's rows come last: a missing bench/peers should stop the run before the measurements, not after them.
if (LLAMACPP) await loadLlamaCpp().catch((e: Error) => { throw new Error(`${e.message} (or GOODPUT_LLAMACPP=0 to skip llama.cpp)`); });
// Requests per client and phase: a client sends its next request when its last one ends (closed loop). At least
// two, and on the tiny pair enough for MIN_PHASE_TOKENS: its phases would otherwise last a tenth of a second, and
// measure the machine's hiccups.
const MIN_WAVES = 2;
const MIN_PHASE_TOKENS: Record<string, number> = { 'wide-100m': 0, stories260K: 8000 };
const wavesFor = (pair: string, c: number) => Math.max(MIN_WAVES, Math.ceil(MIN_PHASE_TOKENS[pair] / (c * TOKENS)));
const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];
// The issue's targets for the widened pair, greedy: the defaults against plain decoding.
const TARGETS: Record<number, number> = { 1: 2.4, 2: 2.1, 4: 1.5, 8: 1.2, 16: 1.0 };

const wide100m = () => benchModel('wide-100m', (dir) =>
  widenModel(join(SHARED, 'stories260K/stories260K.bin'), dir, { preset: 'wide-100m', tokenizer: join(SHARED, 'stories260K/tok512.bin'), dtypes: ['fp32'] }));
const pairs: Record<string, () => string[]> = {
  'wide-100m': () => ['--target', wide100m(), '--draft', storiesDraft()],
  stories260K: () => ['--target', stories(), '--draft', storiesDraft()],
};

type Mode = 'plain' | 'default' | 'forced';
const body = (mode: Mode): Record<string, unknown> =>
  mode === 'plain' ? { speculative: false } : mode === 'forced' ? { speculative: { num_tokens: FORCED } } : {};

/** Cumulative counts of the draft-length histogram by upper bound. */
async function draftLengths(url: string): Promise<Map<number, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const counts = new Map<number, number>();
  for (const m of text.matchAll(/^specserve_spec_decode_draft_length_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    if (m[1] !== '+Inf') counts.set(Number(m[1]), Number(m[2]));
  }
  return counts;
}

/** Sequence-steps at each k between two readings of the histogram. */
function counts(before: Map<number, number>, after: Map<number, number>): Record<number, number> {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const per: Record<number, number> = {};
  let previous = 0;
  for (const le of bounds) {
    const cumulative = after.get(le)! - (before.get(le) ?? 0);
    per[le] = cumulative - previous;
    previous = cumulative;
  }
  return per;
}

/** c clients, each sending `waves` requests of TOKENS tokens back to back; aggregate generated tokens per second. */
async function phase(url: string, c: number, waves: number, mode: Mode, temperature: number) {
  const before = await draftLengths(url);
  let tokens = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, client) => {
    for (let w = 0; w < waves; w++) {
      const r = await fetch(`${url}/v1/completions`, {
        method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'bench', prompt: PROMPTS[(client + w) % PROMPTS.length], max_tokens: TOKENS, temperature, ignore_eos: true, ...body(mode) }),
      });
      const json = await r.json() as { usage?: { completion_tokens: number }; error?: unknown };
      if (!r.ok || !json.usage) throw new Error(`request failed: ${r.status} ${JSON.stringify(json)}`);
      tokens += json.usage.completion_tokens;
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  return { tps: tokens / seconds, counts: counts(before, await draftLengths(url)) };
}

const range = (xs: number[], digits = 1, unit = '') => `${fmt(median(xs), digits)}${unit} [${fmt(Math.min(...xs), digits)}-${fmt(Math.max(...xs), digits)}${unit}]`;

const results: Record<string, unknown>[] = [];
console.log(`## bench:goodput (${machine()})\n`);
console.log(`Through HTTP (\`specserve serve\`, defaults, its own process), requests of ${TOKENS} tokens, ${MIN_WAVES} per client and phase ` +
  `(on stories260K enough for ${MIN_PHASE_TOKENS.stories260K} tokens a phase), ` +
  `ignore_eos; ${ROUNDS} alternating rounds after one unmeasured warm-up of each mode; ratio = median of per-round ratios.\n`);
for (const pair of PAIRS) {
  const { url, stop } = await spawnServer(['--served-model-name', 'bench', ...pairs[pair](), ...(process.env.GOODPUT_SERVER_ARGS ?? '').split(' ').filter(Boolean)]);
  try {
    for (const temperature of TEMPERATURES) {
      const modes: Mode[] = FORCED === null ? ['plain', 'default'] : ['plain', 'default', 'forced'];
      console.log(`### ${pair} + stories260K-draft, ${temperature === 0 ? 'greedy' : `temperature ${temperature}`}\n`);
      console.log(`| concurrency | plain tok/s | defaults tok/s | defaults / plain |${FORCED === null ? '' : ` forced k=${FORCED} / plain |`} k shares under the defaults, % of sequence-steps (0/1/2/3/4) |${pair === 'wide-100m' && temperature === 0 ? ' target |' : ''}`);
      console.log(`|---|---|---|---|${FORCED === null ? '' : '---|'}---|${pair === 'wide-100m' && temperature === 0 ? '---|' : ''}`);
      for (const c of CONCURRENCY) {
        for (const mode of modes) await phase(url, c, wavesFor(pair, c), mode, temperature); // warm-up: the policy meets this batch size
        const tps: Record<Mode, number[]> = { plain: [], default: [], forced: [] };
        const kShares: Record<number, number>[] = [];
        for (let round = 0; round < ROUNDS; round++) {
          for (const mode of round % 2 === 0 ? modes : [...modes].reverse()) {
            const r = await phase(url, c, wavesFor(pair, c), mode, temperature);
            tps[mode].push(r.tps);
            if (mode === 'default') kShares.push(r.counts);
          }
        }
        const ratio = (mode: Mode) => tps[mode].map((t, i) => t / tps.plain[i]);
        const total = kShares.reduce((a, s) => a + Object.values(s).reduce((x, y) => x + y, 0), 0);
        const share = (k: number) => fmt((100 * kShares.reduce((a, s) => a + (s[k] ?? 0), 0)) / Math.max(1, total), 0);
        const target = pair === 'wide-100m' && temperature === 0 ? ` >= ${TARGETS[c] ?? 1}x |` : '';
        console.log(`| ${c} | ${range(tps.plain, 0)} | ${range(tps.default, 0)} | ${range(ratio('default'), 2, 'x')} |` +
          `${FORCED === null ? '' : ` ${range(ratio('forced'), 2, 'x')} |`} ${[0, 1, 2, 3, 4].map(share).join(' / ')}% |${target}`);
        results.push({ pair, temperature, concurrency: c, tps, ratio: ratio('default'), forced: FORCED === null ? null : ratio('forced'), kShares });
      }
      console.log('');
    }
    if (pair === 'wide-100m' && LLAMACPP) results.push({ pair, llamacpp: await llamaCppSideBySide(url, 'wide-100m', TOKENS, ROUNDS) });
  } finally {
    stop();
  }
}
const dir = resolve(import.meta.dirname, 'results');
mkdirSync(dir, { recursive: true });
// A run narrowed by the environment (pairs, concurrencies, rounds...) gets a name of its own: it does not replace the
// day's full record.
const narrowed = Object.keys(process.env).some((k) => k.startsWith('GOODPUT_'));
const file = join(dir, `goodput-${new Date().toISOString().slice(0, 10)}${narrowed ? '-partial' : ''}.json`);
writeFileSync(file, JSON.stringify({ machine: machine(), rounds: ROUNDS, tokens: TOKENS, minWaves: MIN_WAVES, minPhaseTokens: MIN_PHASE_TOKENS, results }, null, 2));
console.log(`results: ${file}`);
process.exit(0);
