// A greedy "draft chain": K copies of a decoder-with-past graph in one ONNX model, each step fed the previous step's
// argmax and present K/V, so that a draft model proposes K tokens in one session.run instead of K.
//
// For a small draft most of a pass is fixed cost (one session.run: feeds, dispatch of every node, outputs; in JS,
// building the feeds), not arithmetic. A chain pays it once per proposal (docs/design.md, "Draft chains and fused
// steps").
//
// Built by graph surgery on any decoder with Optimum's I/O names (ours or a real export), so it works for every
// dtype variant: each step's nodes are cloned with step-suffixed value names, initializers are shared.
//   inputs:  input_ids [B, S], attention_mask [B, P + S], position_ids [B, S], past_key_values.N.key|value
//   outputs: draft_ids [B, K] (int64), present.N.key|value [B, kv, P + S + K - 1, hd] (the inputs and the first
//            K - 1 drafts; the last draft is not fed)
// For a batch of one (the last input position is a real token). Where every Attention node reads one shared mask
// bias (the forge's graphs), steps after the first do not recompute it (~14 nodes): their single query sees what the
// previous step's last query saw, plus itself, so the bias is that row with one more allowed column.
//
// A sampled chain (`sampled: true`) draws each draft from q_t = softmax(logits_t / T) by inverse CDF: it takes inputs
// temperature [1] and uniform.0..K-1 [B, 1, 1] (float32, one uniform per draft from the request's RNG, as sampleFrom
// draws), and each step's draft is the first token whose cumulative probability reaches the uniform (Div, Softmax,
// CumSum, GreaterOrEqual, Cast before the ArgMax: five nodes more than a greedy step). It also returns draft_probs
// [B, K, V] (float32), the q_t that rejection sampling needs, which cost less here than in JS.
import { DataType, graphOf, type Graph, type ModelProto, type NodeProto } from '../../onnx/onnx-proto.ts';
import { makeTensor } from '../../onnx/graph-builder.ts';

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

export interface DraftChainOptions {
  /** Draws drafts from softmax(logits / T) with uniforms fed from JS (above) instead of taking argmaxes. */
  sampled?: boolean;
}

export function buildDraftChain(model: ModelProto, steps: number, o: DraftChainOptions = {}): ModelProto {
  if (!Number.isInteger(steps) || steps < 1) throw new Error(`draft chain: steps must be a positive integer, got ${steps}`);
  const graph = graphOf(model);
  for (const n of graph.node) {
    if (n.attribute?.some((a) => a.g || (a.graphs && a.graphs.length > 0))) {
      throw new Error(`draft chain: node ${n.name} (${n.opType}) has a subgraph; only flat decoder graphs can be chained`);
    }
  }
  const inputNames = new Set(graph.input.map((i) => i.name!));
  const initializers = new Set(graph.initializer.map((t) => t.name!));
  const outputNames = graph.output.map((o) => o.name!);
  const presentOf = (past: string) => past.replace(PAST, 'present.$1.$2');
  const pastInputs = [...inputNames].filter((n) => PAST.test(n));
  for (const p of pastInputs) if (!outputNames.includes(presentOf(p))) throw new Error(`draft chain: no ${presentOf(p)} output for ${p}`);
  if (!outputNames.includes('logits')) throw new Error('draft chain: the graph has no logits output');
  const elemType = (name: string) =>
    (graph.input.find((i) => i.name === name) ?? graph.output.find((o) => o.name === name))?.type?.tensorType?.elemType;
  const idsType = elemType('input_ids');
  const maskType = elemType('attention_mask');
  const hasPositions = inputNames.has('position_ids');
  const sampledInputs = o.sampled ? ['temperature', ...Array.from({ length: steps }, (_, t) => `uniform.${t}`)] : [];
  for (const name of sampledInputs) if (inputNames.has(name)) throw new Error(`draft chain: the graph already has an input ${name}`);

  const nodes: Graph['node'] = [];
  // Constants the glue may use; those no kept node reads are dropped at the end.
  const added = [
    makeTensor('chain.const.zero', DataType.INT64, [1], BigInt64Array.of(0n)),
    makeTensor('chain.const.lastaxis', DataType.INT64, [], BigInt64Array.of(-1n)),
    makeTensor('chain.const.axis1', DataType.INT64, [1], BigInt64Array.of(1n)),
    makeTensor('chain.const.axis2', DataType.INT64, [1], BigInt64Array.of(2n)),
    makeTensor('chain.const.axis3', DataType.INT64, [1], BigInt64Array.of(3n)),
    makeTensor('chain.const.last', DataType.INT64, [1], BigInt64Array.of(-1n)),
    makeTensor('chain.const.end', DataType.INT64, [1], BigInt64Array.of(BigInt(Number.MAX_SAFE_INTEGER))),
    makeTensor('chain.const.one', DataType.INT64, [], BigInt64Array.of(1n)),
    makeTensor('chain.const.one32', DataType.INT32, [], Int32Array.of(1)),
  ];
  let count = 0;
  const node = (opType: string, input: string[], output: string, attribute: NodeProto['attribute'] = []) =>
    nodes.push({ name: `chain.${opType}.${count++}`, opType, domain: '', input, output: [output], attribute });
  const lastAlongAxis1 = (input: string, output: string) =>
    node('Slice', [input, 'chain.const.last', 'chain.const.end', 'chain.const.axis1'], output);

  const attention = graph.node.filter((n) => n.opType === 'Attention' && !n.domain);
  const sharedBias = attention.length > 0 && attention.every((n) => n.input[3] && n.input[3] === attention[0].input[3])
    ? attention[0].input[3] : null;

  // What step t reads for each original graph input (and, from step 1 on, for the shared attention bias).
  let feeds = new Map<string, string>([...inputNames].map((n) => [n, n]));
  const drafts: string[] = [];
  const stepProbs: string[] = [];
  for (let t = 0; t < steps; t++) {
    const last = t === steps - 1;
    const rename = (name: string): string => {
      if (name === '' || initializers.has(name)) return name;
      if (feeds.has(name)) return feeds.get(name)!;
      // The last step's presents are the chain's outputs.
      if (last && name.startsWith('present.')) return name;
      return `${name}::s${t}`;
    };
    for (const n of graph.node) {
      if (n.output.some((o) => feeds.has(o))) continue; // provided for this step already (the shared bias)
      nodes.push({ ...n, name: `${n.name}::s${t}`, input: n.input.map(rename), output: n.output.map(rename) });
    }
    let logits = rename('logits');
    if (elemType('logits') === DataType.FLOAT16) {
      node('Cast', [logits], `chain.logits32.${t}`, [{ name: 'to', type: 2, i: DataType.FLOAT }]);
      logits = `chain.logits32.${t}`;
    }
    // Step 0 may read several positions (the tokens the draft has not seen); later steps read one, so their logits
    // (and positions, and bias rows) need no slicing.
    if (t === 0) {
      lastAlongAxis1(logits, 'chain.lastlogits.0');
      logits = 'chain.lastlogits.0';
    }
    // (Every step's logits are [B, 1, V] here: one position.)
    if (o.sampled) {
      node('Div', [logits, 'temperature'], `chain.scaled.${t}`);
      node('Softmax', [`chain.scaled.${t}`], `chain.probs.${t}`, [{ name: 'axis', type: 2, i: -1 }]);
      stepProbs.push(`chain.probs.${t}`);
      node('CumSum', [`chain.probs.${t}`, 'chain.const.lastaxis'], `chain.cdf.${t}`);
      node('GreaterOrEqual', [`chain.cdf.${t}`, `uniform.${t}`], `chain.reached.${t}`);
      node('Cast', [`chain.reached.${t}`], `chain.reached32.${t}`, [{ name: 'to', type: 2, i: DataType.INT32 }]);
      // The first token whose cumulative probability reaches u. (If rounding left the total below u, none does and
      // ArgMax gives token 0, a ~1e-7 event; where token 0's q is 0 the proposer ends the proposal there.)
      logits = `chain.reached32.${t}`;
    }
    node('ArgMax', [logits], `chain.draft.${t}`, [{ name: 'axis', type: 2, i: -1 }, { name: 'keepdims', type: 2, i: 0 }]);
    drafts.push(`chain.draft.${t}`);
    if (last) break;

    const next = new Map<string, string>();
    if (idsType === DataType.INT32) {
      node('Cast', [`chain.draft.${t}`], `chain.ids.${t + 1}`, [{ name: 'to', type: 2, i: DataType.INT32 }]);
      next.set('input_ids', `chain.ids.${t + 1}`);
    } else {
      next.set('input_ids', `chain.draft.${t}`);
    }
    if (inputNames.has('attention_mask')) {
      // (Dead, and pruned, where the only reader of the mask is a shared bias carried over below.)
      node('Shape', [`chain.draft.${t}`], `chain.shape.${t}`);
      node('ConstantOfShape', [`chain.shape.${t}`], `chain.ones.${t}`, [{ name: 'value', type: 4,
        t: makeTensor('one', maskType === DataType.INT32 ? DataType.INT32 : DataType.INT64, [1],
          maskType === DataType.INT32 ? Int32Array.of(1) : BigInt64Array.of(1n)) }]);
      node('Concat', [feeds.get('attention_mask')!, `chain.ones.${t}`], `chain.mask.${t + 1}`, [{ name: 'axis', type: 2, i: 1 }]);
      next.set('attention_mask', `chain.mask.${t + 1}`);
    }
    if (hasPositions) {
      let lastPos = feeds.get('position_ids')!;
      if (t === 0) {
        lastAlongAxis1(lastPos, 'chain.lastpos.0');
        lastPos = 'chain.lastpos.0';
      }
      const one = elemType('position_ids') === DataType.INT32 ? 'chain.const.one32' : 'chain.const.one';
      node('Add', [lastPos, one], `chain.pos.${t + 1}`);
      next.set('position_ids', `chain.pos.${t + 1}`);
    }
    for (const p of pastInputs) next.set(p, rename(presentOf(p)));
    if (sharedBias) {
      // The bias row of the step's last query, plus one allowed (zero) column; the zero cell, in the bias's own type,
      // is made once from step 0's bias.
      let lastRow = rename(sharedBias);
      if (t === 0) {
        node('Slice', [lastRow, 'chain.const.last', 'chain.const.end', 'chain.const.axis2'], 'chain.biasrow.0');
        lastRow = 'chain.biasrow.0';
        node('Slice', [lastRow, 'chain.const.zero', 'chain.const.axis1', 'chain.const.axis3'], 'chain.biascell');
        node('Sub', ['chain.biascell', 'chain.biascell'], 'chain.biaszero');
      }
      node('Concat', [lastRow, 'chain.biaszero'], `chain.bias.${t + 1}`, [{ name: 'axis', type: 2, i: 3 }]);
      next.set(sharedBias, `chain.bias.${t + 1}`);
    }
    feeds = next;
  }
  node('Concat', drafts, 'draft_ids', [{ name: 'axis', type: 2, i: 1 }]);
  if (o.sampled) node('Concat', stepProbs, 'draft_probs', [{ name: 'axis', type: 2, i: 1 }]);

  const results = ['draft_ids', ...(o.sampled ? ['draft_probs'] : [])];
  graph.node = withoutDeadNodes(nodes, [...results, ...outputNames.filter((name) => name.startsWith('present.'))]);
  const read = new Set(graph.node.flatMap((n) => n.input));
  graph.initializer = [...graph.initializer, ...added.filter((t) => read.has(t.name!))];
  const vocab = graph.output.find((v) => v.name === 'logits')?.type?.tensorType?.shape?.dim?.[2] ?? { dimParam: 'vocab_size' };
  if (o.sampled) {
    graph.input.push({ name: 'temperature', type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimValue: 1 }] } } } });
    graph.input.push(...Array.from({ length: steps }, (_, t) => ({ name: `uniform.${t}`,
      type: { tensorType: { elemType: DataType.FLOAT, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: 1 }, { dimValue: 1 }] } } } })));
  }
  graph.output = [
    { name: 'draft_ids', type: { tensorType: { elemType: DataType.INT64, shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: steps }] } } } },
    ...(o.sampled ? [{ name: 'draft_probs', type: { tensorType: { elemType: DataType.FLOAT,
      shape: { dim: [{ dimParam: 'batch_size' }, { dimValue: steps }, vocab] } } } }] : []),
    ...graph.output.filter((v) => v.name!.startsWith('present.')),
  ];
  (graph as { valueInfo?: unknown[] }).valueInfo = [];
  return model;
}

/** The nodes that contribute to `outputs` (a later step's copy of the mask computation, when the bias is carried
 * over, contributes to nothing). */
function withoutDeadNodes(nodes: Graph['node'], outputs: string[]): Graph['node'] {
  const needed = new Set(outputs);
  const kept: Graph['node'] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!n.output.some((o) => needed.has(o))) continue;
    kept.push(n);
    for (const input of n.input) if (input) needed.add(input);
  }
  return kept.reverse();
}
