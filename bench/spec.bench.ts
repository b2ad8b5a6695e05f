// npm run bench:spec -- speculative decoding on stories260K with each proposer, k and temperature, against plain
// decoding measured in the same process; then the cost side on a bench-size random target with its early-exit draft.
import { Decoder } from '../src/runtime/decoder.ts';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { Engine } from '../src/speculative/engine.ts';
import { DraftModelProposer } from '../src/speculative/draft-model-proposer.ts';
import { NgramProposer } from '../src/speculative/ngram-proposer.ts';
import type { Proposer } from '../src/speculative/proposer.ts';
import { earlyExit, fmt, machine, median, randomBench, run, stories, storiesDraft } from './lib.ts';

const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];

async function measure(target: Decoder, tokenizer: TextTokenizer, proposer: Proposer | null, k: number, adaptive: boolean,
  temperature: number, maxTokens: number, prompts: string[]) {
  const engine = new Engine({ target, tokenizer, proposer, numSpeculativeTokens: k, adaptiveDraftLength: adaptive, maxBatch: 1, maxQueue: 8 });
  let tokens = 0;
  let drafted = 0;
  let accepted = 0;
  let passes = 0;
  const started = performance.now();
  for (const p of prompts) {
    // No seed: seeded sampled requests adapt k on acceptance alone (reproducibility); unseeded ones also on cost.
    const r = await run(engine, { promptIds: tokenizer.encode(p), maxTokens, stop: [], ignoreEos: true,
      sampling: { temperature, topK: 0, topP: 1, minP: 0 } });
    tokens += r.tokens.length;
    drafted += r.stats.numDrafted;
    accepted += r.stats.numAccepted;
    passes += r.stats.numTargetPasses - 1; // the prefill pass is not a decode pass
  }
  const seconds = (performance.now() - started) / 1000;
  await engine.close();
  return { tokensPerSecond: tokens / seconds, tau: (tokens - prompts.length) / passes, acceptance: drafted ? accepted / drafted : 0 };
}

// Rounds alternate every row (plain included), so that a slow stretch of this shared machine hits all rows alike;
// each row reports its median tokens/s and the median of its per-round ratio to plain.
const ROUNDS = Number(process.env.SPEC_ROUNDS ?? 3);

interface ProposerRows {
  proposer: Proposer;
  ks: number[];
  /** Greedy rows only (a variant that differs from the default in how greedy drafts are made). */
  greedyOnly?: boolean;
}

async function table(title: string, target: Decoder, plainTarget: Decoder, tokenizer: TextTokenizer, proposers: Record<string, ProposerRows>,
  temperatures: number[], maxTokens: number, prompts: string[]) {
  console.log(`\n### ${title}\n`);
  console.log('| proposer | k | temperature | tokens per target pass | draft acceptance | tokens/s | vs plain |');
  console.log('|---|---|---|---|---|---|---|');
  for (const temperature of temperatures) {
    await measure(plainTarget, tokenizer, null, 0, false, temperature, 16, prompts.slice(0, 1)); // warm-up
    const rows: { name: string; k: string; run: () => ReturnType<typeof measure> }[] = [
      { name: 'plain', k: '0', run: () => measure(plainTarget, tokenizer, null, 0, false, temperature, maxTokens, prompts) },
    ];
    for (const [name, { proposer, ks, greedyOnly }] of Object.entries(proposers)) {
      if (greedyOnly && temperature > 0) continue;
      for (const k of [...ks, -1]) {
        const adaptive = k === -1;
        rows.push({ name, k: adaptive ? `adaptive <= ${Math.max(...ks)}` : String(k),
          run: () => measure(target, tokenizer, proposer, adaptive ? Math.max(...ks) : k, adaptive, temperature, maxTokens, prompts) });
      }
    }
    const results = rows.map(() => [] as Awaited<ReturnType<typeof measure>>[]);
    for (let round = 0; round < ROUNDS; round++) {
      for (const [i, row] of rows.entries()) results[i].push(await row.run());
    }
    rows.forEach((row, i) => {
      const r = results[i];
      const ratio = median(r.map((x, round) => x.tokensPerSecond / results[0][round].tokensPerSecond));
      console.log(`| ${row.name} | ${row.k} | ${temperature} | ${row.name === 'plain' ? '1.00' : fmt(r[0].tau, 2)} | ` +
        `${row.name === 'plain' ? '-' : `${fmt(r[0].acceptance * 100, 0)}%`} | ${fmt(median(r.map((x) => x.tokensPerSecond)), 0)} | ${fmt(ratio, 2)}x |`);
    });
  }
}

/** Records the k of every decode step of an adaptive engine's lone stream, for the head to head's summary. */
const chosen = new Map<number, number[]>();
function stepKs(maxK: number) {
  const ks: number[] = [];
  chosen.set(maxK, ks);
  return {
    onForward: (phase: string) => {
      if (phase === 'decode') ks.push(0);
    },
    onVerify: (drafted: number) => ks.push(drafted),
  };
}

// Issue 9 target 2 head to head: plain against the distilled draft at the best fixed lengths and adaptive, many short
// alternating rounds (this machine's speed drifts by 20-40% within minutes). Each row keeps one engine for all its
// rounds, as a running server does: the adaptive controller's cost measurements carry over between requests.
async function headToHead(target: Decoder, tokenizer: TextTokenizer, proposer: Proposer, rounds: number, temperature = 0) {
  const engines: [string, Engine][] = [
    ['plain', new Engine({ target, tokenizer, proposer: null, numSpeculativeTokens: 0, maxBatch: 1, maxQueue: 8 })],
    ...[2, 3, 4, 5].map((k) => [`distilled draft, k=${k}`, new Engine({ target, tokenizer, proposer, numSpeculativeTokens: k,
      adaptiveDraftLength: false, maxBatch: 1, maxQueue: 8 })] as [string, Engine]),
    ...[4, 8].map((k) => [`distilled draft, adaptive <= ${k}${k === 4 ? ' (server default)' : ''}`, new Engine({ target, tokenizer, proposer,
      numSpeculativeTokens: k, adaptiveDraftLength: true, maxBatch: 1, maxQueue: 8, hooks: stepKs(k) })] as [string, Engine]),
  ];
  const tps = engines.map(() => [] as number[]);
  const cpu = engines.map(() => [] as number[]);
  const passes = engines.map(() => ({ tokens: 0, passes: 0 }));
  for (let round = 0; round < rounds; round++) {
    for (const [i, [, engine]] of engines.entries()) {
      let tokens = 0;
      const started = performance.now();
      const cpuStarted = process.cpuUsage();
      for (const p of PROMPTS) {
        // (No seed: lone unseeded sampled requests draft in fused steps, seeded ones as in a batch.)
        const r = await run(engine, { promptIds: tokenizer.encode(p), maxTokens: 200, stop: [], ignoreEos: true,
          sampling: { temperature, topK: 0, topP: 1, minP: 0 } });
        tokens += r.tokens.length;
        passes[i].tokens += r.tokens.length - 1; // the first token comes from the prefill pass
        passes[i].passes += r.stats.numTargetPasses - 1;
      }
      tps[i].push(tokens / ((performance.now() - started) / 1000));
      const used = process.cpuUsage(cpuStarted);
      cpu[i].push(tokens / ((used.user + used.system) / 1e6));
    }
  }
  console.log(`\n### Head to head, ${temperature === 0 ? 'greedy' : `temperature ${temperature}`}: ${rounds} alternating rounds of 5 prompts x 200 tokens\n`);
  console.log('| engine | tokens/s (median) | vs plain (median of rounds) | middle half of rounds | rounds >= 1.3x | tokens per CPU-second: vs plain | tokens per target pass |');
  console.log('|---|---|---|---|---|---|---|');
  for (const [i, [name, engine]] of engines.entries()) {
    const ratios = tps[i].map((t, r) => t / tps[0][r]).sort((a, b) => a - b);
    const q = (f: number) => ratios[Math.min(ratios.length - 1, Math.floor(f * ratios.length))];
    const cpuRatio = median(cpu[i].map((t, r) => t / cpu[0][r]));
    console.log(`| ${name} | ${fmt(median(tps[i]), 0)} | ${fmt(median(ratios), 2)}x | ${i === 0 ? '-' : `${fmt(q(0.25), 2)}-${fmt(q(0.75), 2)}x`} | ` +
      `${i === 0 ? '-' : `${ratios.filter((x) => x >= 1.3).length}/${rounds}`} | ${fmt(cpuRatio, 2)}x | ${fmt(passes[i].tokens / passes[i].passes, 2)} |`);
    await engine.close();
  }
  // What the adaptive controller chose: the k of each decode step (a lone stream's step is a plain pass or a fused one).
  for (const [maxK, ks] of chosen) {
    const counts = Array.from({ length: maxK + 1 }, (_, k) => ks.filter((x) => x === k).length);
    const switches = ks.filter((k, i) => i > 0 && k !== ks[i - 1]).length;
    console.log(`\nadaptive <= ${maxK}: steps at k = 0..${maxK}: ${counts.map((c) => `${fmt((100 * c) / ks.length, 0)}%`).join(' / ')}; ` +
      `k changed ${fmt((400 * switches) / ks.length, 0)} times per 400 steps (each change costs about half a step: the new k's session runs cold).`);
  }
  chosen.clear();
  // Tokens per target pass of the fixed-k rows, for the cost side's ceilings.
  return new Map(engines.flatMap(([name], i) => {
    const k = /k=(\d+)$/.exec(name);
    return k ? [[Number(k[1]), passes[i].tokens / passes[i].passes] as [number, number]] : [];
  }));
}

// Target 2's ceiling, without the engine: bare passes of one sequence at 100 past positions (the prompts' middle), as
// the engine runs them (the runtime's graphs and KV buffers). A fused step of k drafts costs what it costs against a
// plain step; with tau tokens per target pass, speculation can gain tau / that at most. Also the verify pass alone
// (k + 1 positions, no drafting) and what switching between two sessions costs (each k runs its own session).
async function costSide(target: Decoder, draft: Decoder, taus: Map<number, number>, rounds: number) {
  const PAST = 100;
  const ITERATIONS = 40;
  const targetCache = target.newCache();
  const draftCache = draft.newCache();
  const context = Array.from({ length: PAST }, (_, i) => 1 + (i % 300));
  await target.forward([{ cache: targetCache, tokens: context }]);
  await draft.forward([{ cache: draftCache, tokens: context }]);
  const plain = async () => {
    await target.forward([{ cache: targetCache, tokens: [7] }]);
    targetCache.rollback(PAST);
  };
  const verify = (positions: number) => async () => {
    await target.forward([{ cache: targetCache, tokens: new Array<number>(positions).fill(7) }]);
    targetCache.rollback(PAST);
  };
  const fused = (k: number) => async () => {
    await draft.speculativeStep(target, { cache: draftCache, tokens: [7] }, targetCache, 7, k);
    draftCache.rollback(PAST);
    targetCache.rollback(PAST);
  };
  const ks = [1, 2, 3, 4, 5];
  const rows: [string, () => Promise<void>][] = [['plain', plain],
    ...ks.map((k) => [`verify ${k + 1}`, verify(k + 1)] as [string, () => Promise<void>]),
    ...ks.map((k) => [`fused ${k}`, fused(k)] as [string, () => Promise<void>]),
    ['switch', async () => {
      await fused(3)();
      await plain();
    }]];
  const us = new Map(rows.map(([name]) => [name, [] as number[]]));
  for (const [, pass] of rows) for (let i = 0; i < 4; i++) await pass(); // warm-up
  for (let round = 0; round < rounds; round++) {
    for (const [name, pass] of rows) {
      const started = performance.now();
      for (let i = 0; i < ITERATIONS; i++) await pass();
      us.get(name)!.push(((performance.now() - started) / ITERATIONS) * 1000);
    }
  }
  const ratio = (name: string) => median(us.get(name)!.map((t, r) => t / us.get('plain')![r]));
  console.log(`\n### Cost side (target 2's ceiling): bare passes of one sequence at ${PAST} past positions, ${rounds} alternating rounds\n`);
  console.log(`A plain step: ${fmt(median(us.get('plain')!), 0)} us (median).\n`);
  console.log('| draft tokens k | verify pass alone (k + 1 positions) vs plain | fused step (draft chain + verify) vs plain | tokens per target pass (head to head) | ceiling: tokens per pass / fused cost |');
  console.log('|---|---|---|---|---|');
  for (const k of ks) {
    const tau = taus.get(k);
    console.log(`| ${k} | ${fmt(ratio(`verify ${k + 1}`), 2)}x | ${fmt(ratio(`fused ${k}`), 2)}x | ${tau ? fmt(tau, 2) : '-'} | ` +
      `${tau ? `${fmt(tau / ratio(`fused ${k}`), 2)}x` : '-'} |`);
  }
  const extra = median(us.get('switch')!.map((t, r) => t - us.get('fused 3')![r] - us.get('plain')![r]));
  console.log(`\nA fused k=3 step and a plain step taking turns (two sessions): ${fmt(extra, 0)} us per pair more than each ` +
    'repeated on its own session (median of rounds): the cost of going back and forth between sessions.');
}

console.log(`## bench:spec (${machine()})`);
console.log('Single stream (batch 1), engine only (no HTTP), 1 ONNX Runtime thread per model for stories260K.');
{
  const dir = stories();
  const target = await Decoder.open(dir, { threads: 1 });
  const tokenizer = TextTokenizer.load(dir);
  const draft = await Decoder.open(storiesDraft(), { threads: 1 });
  const exit2 = await Decoder.open(earlyExit(dir, 2), { threads: 1 });
  // Chains and fused steps built outside the timed runs (the server does this at load).
  const fused = new DraftModelProposer(draft, { target });
  await fused.warmUp(8);
  const chained = new DraftModelProposer(draft, { fuse: false });
  await chained.warmUp(8);
  const early = new DraftModelProposer(exit2, { target });
  await early.warmUp(8);
  // SPEC_H2H_ONLY=1: the head-to-head (greedy and sampled) and cost-side sections alone (about two minutes).
  const h2hOnly = process.env.SPEC_H2H_ONLY === '1';
  if (!h2hOnly) await table('stories260K (5 layers) — 5 prompts x 200 tokens', target, target, tokenizer, {
    'distilled draft (1 layer)': { proposer: fused, ks: [1, 2, 3, 4, 5, 6, 7, 8] },
    'distilled draft, chain and verify in two runs (fuse off)': { proposer: chained, ks: [2, 4, 8], greedyOnly: true },
    'distilled draft, one pass per draft token (chain off)': { proposer: new DraftModelProposer(draft, { chain: false, target }), ks: [2, 4, 8], greedyOnly: true },
    'early-exit (2 layers)': { proposer: early, ks: [1, 2, 4, 8] },
    ngram: { proposer: new NgramProposer(), ks: [1, 2, 4, 8] },
  }, [0, 0.8], 200, PROMPTS);
  const rounds = Number(process.env.SPEC_H2H_ROUNDS ?? 15);
  const taus = await headToHead(target, tokenizer, fused, rounds);
  await costSide(target, draft, taus, rounds);
  await headToHead(target, tokenizer, fused, rounds, 0.8);
}
if (process.env.SPEC_H2H_ONLY !== '1') {
  const preset = process.env.SPEC_BENCH_PRESET ?? 'bench-100m';
  const dir = randomBench(preset);
  const target = await Decoder.open(dir);
  const tokenizer = TextTokenizer.load(dir);
  const exit = await Decoder.open(earlyExit(dir, 2), { threads: 1 }); // as the server runs drafts (--draft-threads 1)
  await table(`${preset} random target (cost side; random weights, so acceptance says little) — 2 prompts x 48 tokens`, target, target, tokenizer,
    { 'early-exit (2 layers)': { proposer: new DraftModelProposer(exit, { target }), ks: [1, 2, 4] } }, [0], 48, ['hello world', 'the quick brown fox']);
}
