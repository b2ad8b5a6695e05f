// npm run bench:overhead -- engine overhead per generated token: plain greedy decoding through the engine against a
// bare session.run loop on the same graph, same process. Two graphs: the model file's (Optimum I/O, present fed back
// as past), and the one the runtime derives for small forge models (attention bias fed from JS, only the new
// positions' KV returned into a buffer of the loop's own, one packed past: graphs/bias-input.ts, graphs/append-kv.ts).
// On the runtime's graph also: the bare loop and the engine on direct sessions (runtime/ort-session.ts: a pass
// without an event-loop turn, what the engine runs on the CPU) and the engine on onnxruntime-node's public ones.
import ort from 'onnxruntime-node';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { withBiasInput } from '../src/runtime/graphs/bias-input.ts';
import { KV_NEW, PACKED_PAST, withAppendedKv } from '../src/runtime/graphs/append-kv.ts';
import { decodeModel, encodeModel } from '../src/onnx/onnx-proto.ts';
import { homeCapacity } from '../src/runtime/append-kv-cache.ts';
import { CHAIN_MAX_BYTES, Decoder } from '../src/runtime/decoder.ts';
import { createCpuSession, hasDirectRuns } from '../src/runtime/ort-session.ts';
import { TextTokenizer } from '../src/runtime/tokenizer.ts';
import { Engine } from '../src/speculative/engine.ts';
import { fmt, machine, median, randomBench, run, stories } from './lib.ts';

// Per model: decode steps per loop, alternating rounds, and rounds run first and not recorded. A stories260K step is
// ~0.5 ms, so its loops are longer and more (a 128-step loop lasted 60 ms, and one hiccup moved a round by 10%). The
// warm-up rounds measure the engine as a server runs it, after V8 has optimised its code: each of the engine's
// functions runs once per step, and for the first few thousand steps of a process the time between two runs was
// ~50-60 us against ~30 us after (BENCHMARKS.md, engine overhead). The warm-up rounds' overheads are printed too.
const PLAN = { stories260K: { steps: 400, rounds: 15, warmup: 4 }, 'bench-100m': { steps: 128, rounds: 7, warmup: 1 } };

/** The greedy token after the last of n positions. */
function lastArgmax(logits: Float32Array, n: number): number {
  const vocab = logits.length / n;
  let best = 0;
  for (let i = 1; i < vocab; i++) if (logits[(n - 1) * vocab + i] > logits[(n - 1) * vocab + best]) best = i;
  return best;
}

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
    const best = lastArgmax(out.logits.data as Float32Array, n);
    past = Object.fromEntries(pastNames.map((name) => [name, out[name.replace('past_key_values', 'present')]]));
    length += n;
    input = [best];
  }
  await session.release();
  return (performance.now() - started) / steps;
}

/** The runtime's derived graph, bare: the cache in one buffer of capacity rounded up as the runtime's
 * (append-kv-cache.ts), the new positions' KV written into it after each run, the bias filled per step; fed as one
 * packed past for a file under 16 MB, else as a past per layer and part (views of the same buffer), as the runtime
 * does (runtime/decoder.ts). `direct`: on a direct session (runtime/ort-session.ts) instead of the public API's. */
async function bareDerivedLoop(dir: string, threads: number, prompt: number[], steps: number, direct = false): Promise<number> {
  const modelPath = join(dir, 'onnx/model.onnx');
  const blocks = 2 * (JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as { num_hidden_layers: number }).num_hidden_layers;
  const packPast = statSync(modelPath).size < CHAIN_MAX_BYTES; // as runtime/decoder.ts decides
  const model = withBiasInput(decodeModel(readFileSync(modelPath)))!.model;
  if (!withAppendedKv(model, '', { packPast })) throw new Error('not a derivable graph');
  const options = { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' as const };
  const session = direct ? await createCpuSession(encodeModel(model), options) : await ort.InferenceSession.create(encodeModel(model), options);
  const meta = session.inputMetadata.find((m) => m.name === (packPast ? PACKED_PAST : 'past_key_values.0.key')) as unknown as { shape: number[] };
  const [, kvHeads, , headDim] = meta.shape;
  let capacity = 0;
  let kv = new Float32Array(0);
  let input = prompt;
  let length = 0;
  let started = 0;
  for (let step = 0; step <= steps; step++) {
    if (step === 1) started = performance.now(); // decode steps only
    const n = input.length;
    if (length + n > capacity) {
      const grown = homeCapacity(length + n); // the runtime's padding (append-kv-cache.ts)
      const next = new Float32Array(blocks * kvHeads * grown * headDim);
      for (let r = 0; r < blocks * kvHeads; r++) next.set(kv.subarray(r * capacity * headDim, (r * capacity + length) * headDim), r * grown * headDim);
      [kv, capacity] = [next, grown];
    }
    const T = capacity + n;
    const bias = new Float32Array(n * T).fill(-Infinity);
    for (let i = 0; i < n; i++) {
      bias.fill(0, i * T, i * T + length);
      bias.fill(0, i * T + capacity, i * T + capacity + i + 1);
    }
    const out = await session.run({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(input.map(BigInt)), [1, n]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: n }, (_, i) => BigInt(length + i)), [1, n]),
      attention_bias: new ort.Tensor('float32', bias, [1, 1, n, T]),
      ...(packPast
        ? { [PACKED_PAST]: new ort.Tensor('float32', kv, [blocks, kvHeads, capacity, headDim]) }
        : Object.fromEntries(Array.from({ length: blocks }, (_, b) => [`past_key_values.${b >> 1}.${b & 1 ? 'value' : 'key'}`,
          new ort.Tensor('float32', kv.subarray(b * kvHeads * capacity * headDim, (b + 1) * kvHeads * capacity * headDim), [1, kvHeads, capacity, headDim])]))),
    });
    const fresh = out[KV_NEW].data as Float32Array;
    for (let b = 0; b < blocks; b++) {
      for (let i = 0; i < n; i++) {
        for (let h = 0; h < kvHeads; h++) {
          const from = ((b * n + i) * kvHeads + h) * headDim;
          kv.set(fresh.subarray(from, from + headDim), ((b * kvHeads + h) * capacity + length + i) * headDim);
        }
      }
    }
    const best = lastArgmax(out.logits.data as Float32Array, n);
    length += n;
    input = [best];
  }
  await session.release();
  return (performance.now() - started) / steps;
}

/** `biasInput: false`: the engine runs the file's graph, as the bare loop does; true: the graph the runtime derives
 * for small forge models (runtime/decoder.ts), what a server runs. `directRuns: false`: on onnxruntime-node's public
 * sessions. */
async function engineLoop(dir: string, threads: number, prompt: number[], biasInput: boolean, steps: number, directRuns = true): Promise<number> {
  const target = await Decoder.open(dir, { threads, biasInput, directRuns });
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
if (!hasDirectRuns()) throw new Error('direct sessions unavailable (runtime/ort-session.ts): the engine would run on public ones');
const head = '| model | threads | decode steps x rounds | file\'s graph: bare ms/token | engine ms/token | overhead | runtime\'s graph: bare ms/token | engine ms/token | overhead | runtime\'s engine vs file\'s bare loop |';
const directHead = '| model | bare session.run ms/token | bare direct ms/token | engine, public sessions ms/token | engine, direct ms/token | direct engine over bare session.run | direct engine over bare direct | public engine over bare session.run |';
const rows: string[] = [];
const directRows: string[] = [];
const warmups: string[] = [];
for (const [name, dir, threads] of [['stories260K', stories(), 1], ['bench-100m', randomBench('bench-100m'), 2]] as const) {
  const prompt = [1, 403, 407, 261, 378];
  const all = [[], [], [], [], [], []] as number[][];
  const [bare, eng, bareDerived, derived, bareDirect, derivedPublic] = all;
  let cold: number[][] = [];
  const { steps, rounds, warmup } = PLAN[name];
  for (let r = 0; r < warmup + rounds; r++) {
    if (r === warmup) cold = all.map((list) => list.splice(0)); // the warm-up rounds' times, apart
    bare.push(await bareLoop(join(dir, 'onnx/model.onnx'), threads, prompt, steps));
    eng.push(await engineLoop(dir, threads, prompt, false, steps));
    bareDerived.push(await bareDerivedLoop(dir, threads, prompt, steps));
    derived.push(await engineLoop(dir, threads, prompt, true, steps));
    bareDirect.push(await bareDerivedLoop(dir, threads, prompt, steps, true));
    derivedPublic.push(await engineLoop(dir, threads, prompt, true, steps, false));
  }
  const pct = (a: number[], b: number[]) => `${fmt((median(a.map((x, r) => x / b[r])) - 1) * 100, 1)}%`;
  rows.push(`| ${name} | ${threads} | ${steps} x ${rounds} | ${fmt(median(bare), 3)} | ${fmt(median(eng), 3)} | ${pct(eng, bare)} | ` +
    `${fmt(median(bareDerived), 3)} | ${fmt(median(derived), 3)} | ${pct(derived, bareDerived)} | ${pct(derived, bare)} |`);
  directRows.push(`| ${name} | ${fmt(median(bareDerived), 3)} | ${fmt(median(bareDirect), 3)} | ${fmt(median(derivedPublic), 3)} | ${fmt(median(derived), 3)} | ` +
    `${pct(derived, bareDerived)} | ${pct(derived, bareDirect)} | ${pct(derivedPublic, bareDerived)} |`);
  const [coldBare, coldEng, coldBareDerived, coldDerived, coldBareDirect, coldPublic] = cold;
  warmups.push(`${name}: ${warmup} round${warmup === 1 ? '' : 's'}, file's graph ${pct(coldEng, coldBare)}, runtime's graph ${pct(coldDerived, coldBareDerived)} ` +
    `(over bare direct ${pct(coldDerived, coldBareDirect)}, public engine ${pct(coldPublic, coldBareDerived)})`);
}
console.log([head, head.replace(/[^|]+/g, '---'), ...rows].join('\n'));
console.log(`\nMedians of alternating rounds after warm-up rounds (not in the tables; their overheads: ${warmups.join('; ')}); ` +
  'overheads are medians of per-round ratios. The engine path includes sampling, detokenization, stop checks and events; each overhead compares it with a bare loop on the same graph.');
console.log('\nThe runtime\'s graph, by kind of session (direct: runtime/ort-session.ts, no event-loop turn per pass; the engine runs on direct sessions):\n');
console.log([directHead, directHead.replace(/[^|]+/g, '---'), ...directRows].join('\n'));
