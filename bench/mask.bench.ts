// npm run bench:mask -- structured output on XGrammar, three ways:
//  1. Masks alone, per vocabulary (512: stories260K; 32,000: the Llama 2 SentencePiece fixture; 50,257: GPT-2's
//     byte-level fixture): tokenizer info and compile times of a nested schema, and the mean time of a mask along a
//     random walk over the allowed tokens with a rollback every 5 tokens, in this thread (XGrammar itself) and through
//     a grammar worker (the server's path: a message each way).
//  2. Through HTTP on the 32k Llama fixture (`--draft none`): time per token of a json_schema request against an
//     unconstrained one (streamed; the gaps between tokens after the first), alternating rounds (MASK_ROUNDS, 20).
//  3. Running streams while a new schema compiles: their inter-token gaps (p50, p99, max) in the compile's window,
//     against the same streams' gaps before it.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { loadXGrammar } from '../src/runtime/structured/xgrammar.ts';
import { compileGrammar, type GrammarSpec } from '../src/runtime/structured/grammar-spec.ts';
import { GrammarService, grammarVocabulary } from '../src/runtime/structured/grammar-service.ts';
import { allows } from '../src/runtime/structured/token-bitmask.ts';
import { Xoshiro128 } from '../src/runtime/rng.ts';
import { fmt, machine, median, SHARED, stories } from './lib.ts';
import { gapsAround, spawnServer, streamCompletion } from './server-lib.ts';

const SCHEMA = {
  type: 'object', additionalProperties: false, required: ['name', 'age', 'tags', 'address'],
  properties: {
    name: { type: 'string', maxLength: 40 }, age: { type: 'integer', minimum: 0, maximum: 120 }, tags: { type: 'array', items: { type: 'string', maxLength: 12 }, maxItems: 4 },
    address: { type: 'object', additionalProperties: false, required: ['city', 'zip'], properties: { city: { type: 'string', pattern: '^[A-Z][a-z]{1,19}$' }, zip: { enum: ['10001', '94105'] } } },
  },
};
const SPEC: GrammarSpec = { type: 'json', schema: SCHEMA };
const WALKS = 20;
// A round is two requests of ~0.15 s each: enough of them that one hiccup of the machine does not move the median.
const HTTP_ROUNDS = Math.max(1, Number(process.env.MASK_ROUNDS ?? 20));
const LLAMA = join(SHARED, 'random-fixtures/ortgenai-tiny-random-LlamaForCausalLM-fp16');
const GPT2 = join(SHARED, 'random-fixtures/ortgenai-tiny-random-gpt2-fp32');
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

/** Random walks over the allowed tokens (never a stop token), a rollback of one token every 5. */
async function walkDirect(tokenizer: TextTokenizer, vocabSize: number, eos: number[]) {
  const xg = loadXGrammar();
  const v = grammarVocabulary(tokenizer, vocabSize, eos);
  let t = performance.now();
  const info = await xg.TokenizerInfo.createTokenizerInfo(v.vocab, v.vocabType, v.addPrefixSpace, v.vocabSize, v.stopTokenIds);
  const infoMs = performance.now() - t;
  const compiler = await xg.GrammarCompiler.createGrammarCompiler(info, false);
  t = performance.now();
  const compiled = await compileGrammar(compiler, SPEC, xg.Testings._jsonSchemaToEBNF);
  const compileMs = performance.now() - t;
  const rng = new Xoshiro128(7);
  const times: number[] = [];
  for (let w = 0; w < WALKS; w++) {
    const m = await xg.GrammarMatcher.createGrammarMatcher(compiled, v.stopTokenIds);
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      const mask = await m.getNextTokenBitmask();
      times.push(performance.now() - t0);
      const allowed: number[] = [];
      for (let id = 0; id < vocabSize; id++) if (allows(mask, id) && !eos.includes(id)) allowed.push(id);
      if (allowed.length === 0) break;
      m.acceptToken(allowed[Math.floor(rng.next() * allowed.length)]);
      if (i % 5 === 4) m.rollBack(1);
    }
    m.dispose();
  }
  return { infoMs, compileMs, meanMs: times.reduce((a, b) => a + b, 0) / times.length, masks: times.length };
}

/** The same walks through a GrammarService: one worker round trip per mask, commits as messages. */
async function walkService(tokenizer: TextTokenizer, vocabSize: number, eos: number[]) {
  const service = new GrammarService(grammarVocabulary(tokenizer, vocabSize, eos));
  const t = performance.now();
  await service.prepare(SPEC);
  const firstCompileMs = performance.now() - t;
  const rng = new Xoshiro128(7);
  const times: number[] = [];
  for (let w = 0; w < WALKS; w++) {
    const m = service.open(SPEC);
    await m.ready;
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      const { masks } = await m.masksAlong([]);
      times.push(performance.now() - t0);
      const allowed: number[] = [];
      for (let id = 0; id < vocabSize; id++) if (allows(masks[0], id) && !eos.includes(id)) allowed.push(id);
      if (allowed.length === 0) break;
      m.commit([allowed[Math.floor(rng.next() * allowed.length)]]);
    }
    m.close();
  }
  await service.close();
  return { firstCompileMs, meanMs: times.reduce((a, b) => a + b, 0) / times.length };
}

console.log(`## bench:mask — structured output on XGrammar (${machine()})\n`);
console.log('| vocabulary | tokenizer info ms | compile ms (in this thread) | compile ms (validate + compile in a worker) | mean mask ms, XGrammar in this thread | mean mask ms through a grammar worker |');
console.log('|---|---|---|---|---|---|');
const vocabularies: [string, string, number, number[]][] = [['512 (stories260K)', stories(), 512, [2]]];
if (existsSync(LLAMA)) vocabularies.push(['32,000 (Llama 2 SentencePiece)', LLAMA, 32000, [2]]);
if (existsSync(GPT2)) vocabularies.push(['50,257 (GPT-2 byte-level)', GPT2, 50257, [50256]]);
for (const [label, dir, vocabSize, eos] of vocabularies) {
  const tokenizer = TextTokenizer.load(dir);
  const direct = await walkDirect(tokenizer, vocabSize, eos);
  const service = await walkService(tokenizer, vocabSize, eos);
  console.log(`| ${label} | ${fmt(direct.infoMs, 0)} | ${fmt(direct.compileMs, 0)} | ${fmt(service.firstCompileMs, 0)} | ${fmt(direct.meanMs, 3)} | ${fmt(service.meanMs, 3)} |`);
}
console.log(`\n${WALKS} random walks of up to 300 tokens per vocabulary under a nested schema (bounded strings, an integer range, a pattern, an enum, an array, an object), a rollback every 5 tokens in this thread.\n`);

if (!existsSync(LLAMA)) process.exit(0);
const { url, stop } = await spawnServer(['--target', LLAMA, '--draft', 'none', '--served-model-name', 'bench']);
try {
  // One frame per token event: one token each without a draft (`--draft none`).
  const stream = (body: Record<string, unknown>) => streamCompletion(url, { model: 'bench', prompt: 'Hello there', ...body });
  const unconstrained = { max_tokens: 256, temperature: 0, ignore_eos: true };
  const constrained = { max_tokens: 256, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'long', schema: {
    type: 'object', additionalProperties: false, required: ['text'], properties: { text: { type: 'string', minLength: 400, maxLength: 800 } } } } } };
  await stream(unconstrained);
  await stream(constrained); // compiles the schema (once)
  const per: Record<string, number[]> = { unconstrained: [], constrained: [] };
  // Per token: from the first token's arrival to the last's, over the tokens between (several may share a read).
  const msPerToken = (times: number[]) => (times[times.length - 1] - times[0]) / (times.length - 1);
  for (let round = 0; round < HTTP_ROUNDS; round++) {
    for (const [label, body] of (round % 2 ? [['constrained', constrained], ['unconstrained', unconstrained]] : [['unconstrained', unconstrained], ['constrained', constrained]]) as [string, Record<string, unknown>][]) {
      per[label].push(msPerToken((await stream(body)).times));
    }
  }
  const ratios = per.constrained.map((c, i) => c / per.unconstrained[i]);
  console.log(`### Through HTTP, 32k Llama fixture, \`--draft none\`, greedy, 256 tokens, ${HTTP_ROUNDS} alternating rounds\n`);
  console.log('| request | median ms per token [range of round medians] |');
  console.log('|---|---|');
  for (const label of ['unconstrained', 'constrained']) {
    console.log(`| ${label === 'constrained' ? 'json_schema (a long string field)' : 'unconstrained'} | ${fmt(median(per[label]), 3)} [${fmt(Math.min(...per[label]), 3)}-${fmt(Math.max(...per[label]), 3)}] |`);
  }
  console.log(`\nConstrained / unconstrained per token: ${fmt(median(ratios), 2)}x [${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}x].\n`);

  // Running streams while a new schema compiles: four long unconstrained streams; once they run, a request with a
  // schema never seen (its compile is the stall a compile on the engine's thread would cause).
  const running = Array.from({ length: 4 }, () => stream({ max_tokens: 1500, temperature: 0, ignore_eos: true }));
  await new Promise((r) => setTimeout(r, 500));
  const fresh = { ...SCHEMA, properties: { ...SCHEMA.properties, note: { type: 'string', maxLength: 30 } } };
  const compileStarted = performance.now();
  const first = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'bench', prompt: 'x', max_tokens: 1, response_format: { type: 'json_schema', json_schema: { name: 'fresh', schema: fresh } } }) });
  await first.json();
  const compileEnded = performance.now();
  const { before, during: window } = gapsAround(await Promise.all(running), compileStarted, compileEnded);
  console.log('### Running streams while a new schema compiles (32k Llama fixture, 4 unconstrained streams)\n');
  console.log(`The new schema's request took ${fmt(compileEnded - compileStarted, 0)} ms (validation and compile in grammar workers, then one token).\n`);
  console.log('| inter-token gaps of the running streams | n | p50 ms | p99 ms | max ms |');
  console.log('|---|---|---|---|---|');
  for (const [label, xs] of [['before the compile', before], ['while it compiles', window]] as [string, number[]][]) {
    console.log(`| ${label} | ${xs.length} | ${fmt(pct(xs, 50), 2)} | ${fmt(pct(xs, 99), 2)} | ${fmt(Math.max(...xs), 2)} |`);
  }
} finally {
  stop();
}
process.exit(0);
