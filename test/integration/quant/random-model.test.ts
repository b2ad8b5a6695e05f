// The forge's graph against the pure-TypeScript reference: prefill and decode steps fed with `present` as `past`,
// batch 1 and batch 3 with left padding, GQA and MHA, tied and untied heads.
import { describe, expect, it } from 'vitest';
import ort from 'onnxruntime-node';
import { buildLlamaGraph } from '../../../src/forge/llama-graph.ts';
import { encodeModel } from '../../../src/onnx/onnx-proto.ts';
import { randomConfig } from '../../../src/forge/forge.ts';
import { randomWeights } from '../../../src/forge/random-weights.ts';
import { referenceLogits } from '../../helpers/reference-llama.ts';
import type { LlamaConfig } from '../../../src/forge/llama-config.ts';
import { maxDiff } from '../../helpers/float-diff.ts';

const TOLERANCE = 1e-4;

const i64 = (values: number[], dims: number[]) => new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), dims);

/** Prefill the left-padded batch, then decode `steps` tokens per sequence, checking every logit row against the reference. */
async function checkAgainstReference(c: LlamaConfig, prompts: number[][], steps: number) {
  const weights = randomWeights(c, 7);
  const session = await ort.InferenceSession.create(encodeModel(buildLlamaGraph(c, weights)));
  const B = prompts.length;
  const width = Math.max(...prompts.map((p) => p.length));
  const pad = prompts.map((p) => width - p.length);
  const seqs = prompts.map((p) => [...p]);
  const mask = prompts.map((p, b) => [...Array(pad[b]).fill(0), ...p.map(() => 1)]);
  let past: Record<string, ort.Tensor> = {};
  for (let l = 0; l < c.numLayers; l++) {
    for (const kv of ['key', 'value']) past[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [B, c.numKvHeads, 0, c.headDim]);
  }
  let worst = 0;
  // Prefill.
  let out = await session.run({
    input_ids: i64(prompts.flatMap((p, b) => [...Array(pad[b]).fill(0), ...p]), [B, width]),
    attention_mask: i64(mask.flat(), [B, width]),
    position_ids: i64(prompts.flatMap((p, b) => [...Array(pad[b]).fill(0), ...p.map((_, i) => i)]), [B, width]),
    ...past,
  });
  let logits = out.logits.data as Float32Array;
  prompts.forEach((p, b) => {
    const ref = referenceLogits(c, weights, p);
    const got = logits.subarray((b * width + pad[b]) * c.vocabSize, (b + 1) * width * c.vocabSize);
    worst = Math.max(worst, maxDiff(got, ref));
  });
  for (let step = 0; step < steps; step++) {
    const next = seqs.map((s, b) => (s[s.length - 1] * 31 + 17 * (step + b)) % c.vocabSize);
    seqs.forEach((s, b) => s.push(next[b]));
    mask.forEach((m) => m.push(1));
    past = Object.fromEntries(Object.keys(past).map((k) => [k, out[k.replace('past_key_values', 'present')]]));
    out = await session.run({
      input_ids: i64(next, [B, 1]),
      attention_mask: i64(mask.flat(), [B, mask[0].length]),
      position_ids: i64(seqs.map((s) => s.length - 1), [B, 1]),
      ...past,
    });
    logits = out.logits.data as Float32Array;
    expect(out['present.0.key'].dims).toEqual([B, c.numKvHeads, width + step + 1, c.headDim]);
    seqs.forEach((s, b) => {
      const ref = referenceLogits(c, weights, s).subarray((s.length - 1) * c.vocabSize);
      worst = Math.max(worst, maxDiff(logits.subarray(b * c.vocabSize, (b + 1) * c.vocabSize), ref));
    });
  }
  await session.release();
  return worst;
}

describe('forge graph vs TypeScript reference', () => {
  const gqa = randomConfig({ preset: 'tiny' });
  const mhaUntied = randomConfig({ preset: 'tiny', numKvHeads: 4, tieWordEmbeddings: false, numLayers: 3 });

  it('batch 1: prefill and 4 decode steps within 1e-4 (GQA, tied head)', async () => {
    expect(await checkAgainstReference(gqa, [[1, 300, 7, 42, 99, 511]], 4)).toBeLessThan(TOLERANCE);
  });

  it('batch 3 with left padding: prefill and 4 decode steps within 1e-4 (GQA, tied head)', async () => {
    expect(await checkAgainstReference(gqa, [[1, 5, 9, 100, 200], [1, 3, 4], [1, 2, 3, 4, 5, 6, 7]], 4)).toBeLessThan(TOLERANCE);
  });

  it('batch 3 with left padding within 1e-4 (MHA, untied head, 3 layers)', async () => {
    expect(await checkAgainstReference(mhaUntied, [[1, 8], [1, 400, 401, 402, 403], [1, 77, 78]], 3)).toBeLessThan(TOLERANCE);
  });

  it('a wrong weight is caught by the comparison (the check can fail)', async () => {
    const c = gqa;
    const weights = randomWeights(c, 7);
    const broken = { ...weights, layers: weights.layers.map((l, i) => (i === 0 ? { ...l, up: l.gate } : l)) };
    const session = await ort.InferenceSession.create(encodeModel(buildLlamaGraph(c, broken)));
    const tokens = [1, 5, 9];
    const feeds: Record<string, ort.Tensor> = {
      input_ids: i64(tokens, [1, 3]), attention_mask: i64([1, 1, 1], [1, 3]), position_ids: i64([0, 1, 2], [1, 3]),
    };
    for (let l = 0; l < c.numLayers; l++) {
      for (const kv of ['key', 'value']) feeds[`past_key_values.${l}.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, c.numKvHeads, 0, c.headDim]);
    }
    const out = await session.run(feeds);
    expect(maxDiff(out.logits.data as Float32Array, referenceLogits(c, weights, tokens))).toBeGreaterThan(TOLERANCE);
  });
});
