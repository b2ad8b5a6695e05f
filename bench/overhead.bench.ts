// npm run bench:overhead -- engine overhead per generated token: plain greedy decoding through the engine against a
// bare session.run loop (present fed back as past, nothing else) on the same model, same process.
import ort from 'onnxruntime-node';
import { join } from 'node:path';
import { Decoder } from '../src/runtime/decoder.ts';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { Engine } from '../src/speculative/engine.ts';
import { fmt, machine, median, randomBench, run, stories } from './lib.ts';

// Per model: decode steps per loop and alternating rounds. A stories260K step is ~0.5 ms, so its loops are longer and
// more (a 128-step loop lasted 60 ms, and one hiccup moved a round by 10%).
const PLAN = { stories260K: { steps: 400, rounds: 15 }, 'bench-100m': { steps: 128, rounds: 7 } };

async function bareLoop(modelPath: string, threads: number, prompt: number[], steps: number): Promise<number> {
  const session = await ort.InferenceSession.create(modelPath, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const pastNames = session.inputNames.filter((n) => n.startsWith('past_key_values.'));
  const meta = session.inputMetadata.find((m) => m.name === pastNames[0]);
  const [, kvHeads, , headDim] = (meta as unknown as { shape: number[] }).shape;
  let past: Record<string, ort.Tensor> = Object.fromEntries(pastNames.map((n) => [n, new ort.Tensor('float32', new Float32Array(0), [1, kvHeads, 0, headDim])]));
  let input = prompt;
  let length = 0;
  let started = 0;
  for (let step = 0; step <= steps; step++) {
    if (step === 1) started = performance.now(); // decode steps only
    const n = input.length;
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(input.map(BigInt)), [1, n]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(length + n).fill(1n), [1, length + n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(length + i)), [1, n]),
      ...past,
    });
    const logits = out.logits.data as Float32Array;
    const vocab = logits.length / n;
    let best = 0;
    for (let i = 1; i < vocab; i++) if (logits[(n - 1) * vocab + i] > logits[(n - 1) * vocab + best]) best = i;
    past = Object.fromEntries(pastNames.map((name) => [name, out[name.replace('past_key_values', 'present')]]));
    length += n;
    input = [best];
  }
  await session.release();
  return (performance.now() - started) / steps;
}

/** `biasInput: false`: the engine runs the file's graph, as the bare loop does (the engine's own cost); true: the
 * graph the runtime derives for small forge models (runtime/decoder.ts), what a server runs. */
async function engineLoop(dir: string, threads: number, prompt: number[], biasInput: boolean, steps: number): Promise<number> {
  const target = await Decoder.open(dir, { threads, biasInput });
  let decodeSeconds = 0;
  let tokens = 0;
  const engine = new Engine({ target, tokenizer: TextTokenizer.load(dir), proposer: null, numSpeculativeTokens: 0, maxBatch: 1, maxQueue: 4,
    hooks: { onForward: () => {} } });
  const r = await run(engine, { promptIds: prompt, maxTokens: steps + 1, stop: [], ignoreEos: true, sampling: { temperature: 0, topK: 0, topP: 1, minP: 0 } });
  decodeSeconds = r.stats.decodeSeconds;
  tokens = r.tokens.length - 1;
  await engine.close();
  await target.close();
  return (decodeSeconds * 1000) / tokens;
}

console.log(`## bench:overhead — engine vs bare session.run loop, greedy (${machine()})\n`);
console.log('| model | threads | decode steps x rounds | bare ms/token | engine ms/token | overhead | engine on the runtime\'s graph, ms/token | vs bare |');
console.log('|---|---|---|---|---|---|---|---|');
for (const [name, dir, threads] of [['stories260K', stories(), 1], ['bench-100m', randomBench('bench-100m'), 2]] as const) {
  const prompt = [1, 403, 407, 261, 378];
  const bare: number[] = [];
  const eng: number[] = [];
  const derived: number[] = [];
  const { steps, rounds } = PLAN[name];
  for (let r = 0; r < rounds; r++) {
    bare.push(await bareLoop(join(dir, 'onnx/model.onnx'), threads, prompt, steps));
    eng.push(await engineLoop(dir, threads, prompt, false, steps));
    if (process.env.OVERHEAD_SAME_GRAPH_ONLY !== '1') derived.push(await engineLoop(dir, threads, prompt, true, steps));
  }
  const ratio = median(eng.map((e, r) => e / bare[r]));
  const derivedRatio = median(derived.map((e, r) => e / bare[r]));
  console.log(`| ${name} | ${threads} | ${steps} x ${rounds} | ${fmt(median(bare), 3)} | ${fmt(median(eng), 3)} | ${fmt((ratio - 1) * 100, 1)}% | ` +
    (derived.length ? `${fmt(median(derived), 3)} | ${fmt((derivedRatio - 1) * 100, 1)}% |` : '- | - |'));
}
console.log(`\nMedians of alternating rounds; overhead is the median of the per-round ratios. The engine path includes sampling, detokenization, stop checks and events; "overhead" compares it with the bare loop on the same graph (the file).`);
