// The runtime's graph surgery refuses what it cannot derive faithfully: a fused speculative step of two graphs that
// import different opset versions or share names with the draft prefix, and a bias-input graph from a model the
// forge did not write (its mask semantics are unknown) or whose Attention nodes do not share one Where-made bias;
// appended KV outputs only where every layer's past reaches an Attention node, and a packed past only from opset 18.
import { describe, expect, it } from 'vitest';
import { buildLlamaGraph } from '../../../src/forge/llama-graph.ts';
import { randomConfig } from '../../../src/forge/forge.ts';
import { randomWeights } from '../../../src/forge/random-weights.ts';
import { decodeModel, encodeModel, graphOf, type ModelProto } from '../../../src/onnx/onnx-proto.ts';
import { buildSpeculativeStep } from '../../../src/runtime/graphs/speculative-step.ts';
import { BIAS_INPUT, withBiasInput } from '../../../src/runtime/graphs/bias-input.ts';
import { KV_NEW, PACKED_PAST, withAppendedKv } from '../../../src/runtime/graphs/append-kv.ts';
import { buildDraftChain } from '../../../src/runtime/graphs/draft-chain.ts';

function model(numLayers: number): ModelProto {
  const c = randomConfig({ preset: 'tiny', numLayers });
  return decodeModel(encodeModel(buildLlamaGraph(c, randomWeights(c, 3))));
}

describe('buildSpeculativeStep', () => {
  it('joins a chain and a target: pending_ids and the draft.-prefixed chain in, drafts, logits and both presents out', () => {
    const step = graphOf(buildSpeculativeStep(model(1), model(2), 3));
    const inputs = step.input.map((i) => i.name);
    expect(inputs).toContain('pending_ids');
    expect(inputs).not.toContain('input_ids');
    expect(inputs).toContain('draft.input_ids');
    expect(inputs).toContain('past_key_values.1.value');
    expect(inputs).toContain('draft.past_key_values.0.key');
    expect(step.output.map((o) => o.name)).toEqual(expect.arrayContaining(['draft.draft_ids', 'logits', 'present.1.key', 'draft.present.0.value']));
  });

  it('refuses graphs that import different versions of an opset', () => {
    const draft = model(1);
    draft.opsetImport[0].version = 21;
    expect(() => buildSpeculativeStep(draft, model(2), 2)).toThrow(/different versions of opset "ai.onnx"/);
  });

  it('refuses a target that already uses the draft prefix', () => {
    const target = model(2);
    graphOf(target).node[0].output[0] = 'draft.clash';
    expect(() => buildSpeculativeStep(model(1), target, 2)).toThrow(/draft prefix/);
  });
});

describe('withBiasInput', () => {
  it('replaces the mask subgraph of a forge graph with an attention_bias input', () => {
    const derived = withBiasInput(model(2))!;
    expect(derived.type).toBe('float32');
    expect(derived.allowed).toBe(0);
    expect(derived.masked).toBeLessThan(-1e38);
    const g = graphOf(derived.model);
    expect(g.input.map((i) => i.name)).toContain(BIAS_INPUT);
    expect(g.input.map((i) => i.name)).not.toContain('attention_mask');
    expect(g.node.some((n) => n.opType === 'Where' || n.opType === 'Range')).toBe(false);
    expect(g.node.filter((n) => n.opType === 'Attention').every((n) => n.input[3] === BIAS_INPUT)).toBe(true);
  });

  it('leaves graphs alone that the forge did not write, or whose attention does not share one Where-made bias', () => {
    const foreign = model(2);
    foreign.producerName = 'optimum-onnx';
    expect(withBiasInput(foreign)).toBeNull();
    const split = model(2);
    graphOf(split).node.filter((n) => n.opType === 'Attention')[1].input[3] = 'some_other_bias';
    expect(withBiasInput(split)).toBeNull();
  });
});

describe('withAppendedKv', () => {
  it('replaces every present output by one kv_new output; a packed past replaces the past inputs', () => {
    const m = withBiasInput(model(2))!.model;
    expect(withAppendedKv(m, '', { packPast: true })).toBe(true);
    const g = graphOf(m);
    expect(g.output.map((o) => o.name)).toEqual(['logits', KV_NEW]);
    expect(g.input.map((i) => i.name)).toEqual(['input_ids', 'position_ids', PACKED_PAST, BIAS_INPUT]);
    expect(g.node[0].opType).toBe('Split');
    // The presents stay as values: the CPU Attention kernel requires them when a past is given.
    expect(g.node.filter((n) => n.opType === 'Attention').every((n) => n.output.length === 3)).toBe(true);
  });

  it("concatenates a draft chain's steps per layer, in step order, under the chain's prefix", () => {
    const step = buildSpeculativeStep(withBiasInput(model(1))!.model, withBiasInput(model(2))!.model, 3);
    expect(withAppendedKv(step, 'draft.')).toBe(true);
    expect(withAppendedKv(step, '')).toBe(true);
    const g = graphOf(step);
    expect(g.output.map((o) => o.name)).toEqual(['draft.draft_ids', `draft.${KV_NEW}`, 'logits', KV_NEW]);
    const perLayer = g.node.filter((n) => n.output[0] === 'draft.kv_new.0.key');
    expect(perLayer.map((n) => [n.opType, n.input.length])).toEqual([['Concat', 3]]);
    const keys = g.node.filter((n) => n.opType === 'Attention' && n.name!.startsWith('draft.')).map((n) => n.input[1]);
    expect(perLayer[0].input).toEqual(keys);
  });

  it('leaves graphs alone without KV, with a present missing, or (packed) below opset 18', () => {
    const chainless = buildDraftChain(model(1), 2);
    graphOf(chainless).output = graphOf(chainless).output.filter((o) => o.name !== 'present.0.value');
    expect(withAppendedKv(chainless)).toBe(false);
    expect(graphOf(chainless).output.some((o) => o.name === KV_NEW)).toBe(false);
    expect(withAppendedKv(model(2), 'draft.')).toBe(false);
    const old = model(2);
    old.opsetImport[0].version = 17;
    expect(withAppendedKv(old, '', { packPast: true })).toBe(false);
  });
});
