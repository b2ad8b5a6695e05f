// npm run bench:concurrency -- aggregate tokens/s of the engine (no HTTP, no load generator competing for the 2
// cores) at 1, 4 and 16 concurrent streams, with and without speculation: what continuous batching buys, and where
// speculation stops paying as the batch grows.
import ort from 'onnxruntime-node';
import { readFileSync } from 'node:fs';
import { withBiasInput } from '../src/runtime/graphs/bias-input.ts';
import { PACKED_PAST, withAppendedKv } from '../src/runtime/graphs/append-kv.ts';
import { decodeModel, encodeModel } from '../src/onnx/onnx-proto.ts';
import { Decoder } from '../src/runtime/decoder.ts';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { Engine } from '../src/speculative/engine.ts';
import { DraftModelProposer } from '../src/speculative/draft-model-proposer.ts';
import { fmt, machine, median, run, stories, storiesDraft } from './lib.ts';

const PROMPTS = ['Once upon a time', 'Tom and Sue went to the park', 'The little dog', 'Lily saw a big red ball. She', 'One day, a boy named Tim'];
const TOKENS = 128;

const dir = stories();
const target = await Decoder.open(dir, { threads: 1 });
const tokenizer = TextTokenizer.load(dir);
const draft = await Decoder.open(storiesDraft(), { threads: 1 });
await new DraftModelProposer(draft, { target }).warmUp(4); // build the draft chains and fused steps outside the timed runs

/** k = -1: the server's defaults (adaptive k <= 4, speculation off from 2 requests). Requests carry no seed: seeded
 * sampled requests speculate whatever the load (reproducibility), which is not what most traffic is. */
async function aggregate(concurrency: number, k: number, temperature: number): Promise<number> {
  const server = k === -1;
  const engine = new Engine({ target, tokenizer, proposer: k ? new DraftModelProposer(draft, { target }) : null, numSpeculativeTokens: server ? 4 : k,
    adaptiveDraftLength: server, disableSpeculationAtBatch: server ? 2 : 0, maxBatch: 16, maxQueue: 64 });
  const started = performance.now();
  const results = await Promise.all(Array.from({ length: concurrency }, (_, i) => run(engine, {
    promptIds: tokenizer.encode(PROMPTS[i % PROMPTS.length]), maxTokens: TOKENS, stop: [], ignoreEos: true,
    sampling: { temperature, topK: 0, topP: 1, minP: 0 },
  })));
  const seconds = (performance.now() - started) / 1000;
  await engine.close();
  return results.reduce((a, r) => a + r.tokens.length, 0) / seconds;
}

console.log(`## bench:concurrency — stories260K + distilled draft, engine only, ${TOKENS} tokens per stream (${machine()})\n`);
const ROUNDS = Number(process.env.CONCURRENCY_ROUNDS ?? 3);
const KS = [0, 1, 2, 4, -1];
const CS = [1, 4, 16];
await aggregate(2, 0, 0); // warm-up
for (const temperature of [0, 0.8]) {
  // Rounds alternate every cell, so that a slow stretch of this shared machine hits all alike; cells report medians.
  const tps = KS.map(() => CS.map(() => [] as number[]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const [i, k] of KS.entries()) for (const [j, c] of CS.entries()) tps[i][j].push(await aggregate(c, k, temperature));
  }
  if (temperature === 0) {
    console.log(`Medians of ${ROUNDS} alternating rounds.\n`);
    console.log('| temperature | draft k | c=1 tok/s | c=4 tok/s | c=16 tok/s | c=16 / c=1 (median of rounds) |');
    console.log('|---|---|---|---|---|---|');
  }
  for (const [i, k] of KS.entries()) {
    const [c1, c4, c16] = tps[i].map(median);
    const ratio = median(tps[i][2].map((t, r) => t / tps[i][0][r]));
    const label = k === -1 ? 'server default: adaptive <= 4, off from 2 requests' : k || 'off';
    console.log(`| ${temperature} | ${label} | ${fmt(c1, 0)} | ${fmt(c4, 0)} | ${fmt(c16, 0)} | ${fmt(ratio, 2)}x |`);
  }
}

// The ceiling ONNX Runtime itself sets: a bare session.run (no engine, no copies) at batch 16 against batch 1, for
// one new position after P past positions. Continuous batching cannot beat 16 x t(1) / t(16) at that length.
{
  const session = await ort.InferenceSession.create(target.folder.modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const { numLayers, numKvHeads, headDim } = target.folder;
  const bare = async (B: number, P: number) => {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      input_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(5n), [B, 1]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(B * (P + 1)).fill(1n), [B, P + 1]),
      position_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(BigInt(P)), [B, 1]),
    };
    for (let l = 0; l < numLayers; l++) {
      for (const part of ['key', 'value']) {
        feeds[`past_key_values.${l}.${part}`] = new ort.Tensor('float32', new Float32Array(B * numKvHeads * P * headDim), [B, numKvHeads, P, headDim]);
      }
    }
    for (let i = 0; i < 20; i++) await session.run(feeds);
    const started = performance.now();
    for (let i = 0; i < 300; i++) await session.run(feeds);
    return (performance.now() - started) / 300;
  };
  // The same on the graphs the runtime derives for this model (graphs/bias-input.ts, graphs/append-kv.ts): batch 1
  // with one packed past, batch 16 with a past per layer and part, each returning only the new position's KV.
  const derive = (packPast: boolean) => {
    const model = withBiasInput(decodeModel(readFileSync(target.folder.modelPath)))!.model;
    if (!withAppendedKv(model, '', { packPast })) throw new Error('not a derivable graph');
    return ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  };
  const [solo, batched] = [await derive(true), await derive(false)];
  const bareDerived = async (B: number, P: number) => {
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      input_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(5n), [B, 1]),
      attention_bias: new ort.Tensor('float32', new Float32Array(B * (P + 1)), [B, 1, 1, P + 1]),
      position_ids: new ort.Tensor('int64', new BigInt64Array(B).fill(BigInt(P)), [B, 1]),
    };
    if (B === 1) feeds[PACKED_PAST] = new ort.Tensor('float32', new Float32Array(2 * numLayers * numKvHeads * P * headDim), [2 * numLayers, numKvHeads, P, headDim]);
    for (let l = 0; l < numLayers && B > 1; l++) {
      for (const part of ['key', 'value']) {
        feeds[`past_key_values.${l}.${part}`] = new ort.Tensor('float32', new Float32Array(B * numKvHeads * P * headDim), [B, numKvHeads, P, headDim]);
      }
    }
    const s = B === 1 ? solo : batched;
    for (let i = 0; i < 20; i++) await s.run(feeds);
    const started = performance.now();
    for (let i = 0; i < 300; i++) await s.run(feeds);
    return (performance.now() - started) / 300;
  };
  console.log('\n| past positions | graph | bare run, batch 1 (us) | bare run, batch 16 (us) | ceiling 16 x t1 / t16 |');
  console.log('|---|---|---|---|---|');
  for (const P of [32, 64, 128]) {
    const [t1, t16] = [await bare(1, P), await bare(16, P)];
    console.log(`| ${P} | the file's | ${fmt(t1 * 1000, 0)} | ${fmt(t16 * 1000, 0)} | ${fmt((16 * t1) / t16, 2)}x |`);
    const [d1, d16] = [await bareDerived(1, P), await bareDerived(16, P)];
    console.log(`| ${P} | the runtime's | ${fmt(d1 * 1000, 0)} | ${fmt(d16 * 1000, 0)} | ${fmt((16 * d1) / d16, 2)}x |`);
  }
  await session.release();
  await solo.release();
  await batched.release();
}
