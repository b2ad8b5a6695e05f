// A fused speculative step: a greedy draft chain (draft-chain.ts) and the target's verification pass in one ONNX model,
// so that a single stream's step (k draft tokens, then the target over the pending token and the k drafts) is one
// session.run instead of two. For small models most of a run is fixed cost (feeds, outputs, dispatch), and the second
// run of a step is what fusing saves.
//
// Built by graph surgery on two decoders with Optimum's I/O names: the chain's names all get a "draft." prefix (its
// symbolic dimensions too: the draft's past and the target's past have different lengths), the target's input_ids
// become Concat(pending_ids, draft.draft_ids).
//   inputs:  pending_ids [B, 1], the target's attention_mask [B, P + 1 + K], position_ids [B, 1 + K] and
//            past_key_values.N.*; the chain's inputs as draft.input_ids, draft.attention_mask, ...
//   outputs: draft.draft_ids [B, K], draft.present.N.*, logits [B, 1 + K, V], present.N.*
// A sampled step's chain (draft-chain.ts, `sampled`) also takes draft.temperature and draft.uniform.0..K-1 and returns
// draft.draft_probs; the target's part then also takes temperature and returns probs [B, 1 + K, V] (float32),
// softmax(logits / T), from which the verifier's p rows come (the request's top-k / top-p / min-p cut in JS).
import { buildDraftChain, type DraftChainOptions } from './draft-chain.ts';
import { DataType, graphOf, type Graph, type ModelProto } from '../../onnx/onnx-proto.ts';

const PREFIX = 'draft.';

export function buildSpeculativeStep(draft: ModelProto, target: ModelProto, steps: number, o: DraftChainOptions = {}): ModelProto {
  const chain = buildDraftChain(draft, steps, o);
  const tg = graphOf(target);
  for (const n of tg.node) {
    if (n.attribute?.some((a) => a.g || (a.graphs && a.graphs.length > 0))) {
      throw new Error(`speculative step: target node ${n.name} (${n.opType}) has a subgraph; only flat graphs can be fused`);
    }
  }
  const opsets = mergeOpsets(chain, target);
  const cg = prefixed(graphOf(chain));

  const targetValues = new Set([...tg.input.map((i) => i.name!), ...tg.initializer.map((t) => t.name!), ...tg.node.flatMap((n) => [...n.output, n.name!])]);
  const clash = [...targetValues].find((name) => name.startsWith(PREFIX));
  if (clash) throw new Error(`speculative step: the target already has a name with the draft prefix (${clash})`);

  const ids = tg.input.find((i) => i.name === 'input_ids');
  if (!ids) throw new Error('speculative step: the target has no input_ids input');
  const idsType = ids.type?.tensorType?.elemType;
  const glue: Graph['node'] = [];
  let drafts = `${PREFIX}draft_ids`;
  if (idsType === DataType.INT32) {
    glue.push({ name: 'step.Cast', opType: 'Cast', domain: '', input: [drafts], output: ['step.draft_ids32'], attribute: [{ name: 'to', type: 2, i: DataType.INT32 }] });
    drafts = 'step.draft_ids32';
  }
  glue.push({ name: 'step.Concat', opType: 'Concat', domain: '', input: ['pending_ids', drafts], output: ['input_ids'], attribute: [{ name: 'axis', type: 2, i: 1 }] });
  const after: Graph['node'] = [];
  const sampledIo: { inputs: Graph['input']; outputs: Graph['output'] } = { inputs: [], outputs: [] };
  if (o.sampled) {
    if (targetValues.has('temperature') || targetValues.has('probs')) throw new Error('speculative step: the target already has a value named temperature or probs');
    const logitsInfo = tg.output.find((v) => v.name === 'logits');
    if (!logitsInfo) throw new Error('speculative step: the target has no logits output');
    let logits = 'logits';
    if (logitsInfo.type?.tensorType?.elemType === DataType.FLOAT16) {
      after.push({ name: 'step.CastLogits', opType: 'Cast', domain: '', input: [logits], output: ['step.logits32'], attribute: [{ name: 'to', type: 2, i: DataType.FLOAT }] });
      logits = 'step.logits32';
    }
    after.push({ name: 'step.Div', opType: 'Div', domain: '', input: [logits, 'temperature'], output: ['step.scaled'], attribute: [] });
    after.push({ name: 'step.Softmax', opType: 'Softmax', domain: '', input: ['step.scaled'], output: ['probs'], attribute: [{ name: 'axis', type: 2, i: -1 }] });
    sampledIo.inputs.push({ name: 'temperature', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } } });
    sampledIo.outputs.push({ name: 'probs', type: { tensorType: { elemType: DataType.FLOAT, shape: logitsInfo.type?.tensorType?.shape } } });
  }

  const pending = { name: 'pending_ids', type: { tensorType: { elemType: idsType, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: 1 }] } } } };
  tg.input = [pending, ...tg.input.filter((i) => i !== ids), ...cg.input, ...sampledIo.inputs];
  tg.node = [...cg.node, ...glue, ...tg.node, ...after];
  tg.initializer = [...cg.initializer, ...tg.initializer];
  tg.output = [...cg.output, ...tg.output, ...sampledIo.outputs];
  (tg as { valueInfo?: unknown[] }).valueInfo = [];
  target.opsetImport = opsets;
  target.irVersion = Math.max(Number(target.irVersion ?? 0), Number(chain.irVersion ?? 0));
  return target;
}

/** The graph with every value, node, initializer, graph input/output and symbolic dimension renamed PREFIX + name. */
function prefixed(g: Graph): Graph {
  const p = (name: string) => (name ? PREFIX + name : name);
  for (const n of g.node) {
    n.name = p(n.name ?? '');
    n.input = n.input.map(p);
    n.output = n.output.map(p);
  }
  for (const t of g.initializer) t.name = p(t.name!);
  for (const v of [...g.input, ...g.output]) {
    v.name = p(v.name!);
    for (const d of v.type?.tensorType?.shape?.dim ?? []) if (d.dimParam) d.dimParam = p(d.dimParam);
  }
  return g;
}

/** One opset import per domain; the two models must agree where both import a domain (an op's meaning depends on it). */
function mergeOpsets(a: ModelProto, b: ModelProto): ModelProto['opsetImport'] {
  const versions = new Map<string, number>();
  for (const o of [...a.opsetImport, ...b.opsetImport]) {
    const domain = o.domain ?? '';
    const version = Number(o.version);
    const seen = versions.get(domain);
    if (seen !== undefined && seen !== version) {
      throw new Error(`speculative step: draft and target import different versions of opset "${domain || 'ai.onnx'}" (${seen}, ${version})`);
    }
    versions.set(domain, version);
  }
  return [...versions].map(([domain, version]) => ({ domain, version }));
}
