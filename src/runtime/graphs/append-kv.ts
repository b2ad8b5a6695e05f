// Appended KV outputs: a graph that returns only the keys and values of the positions it computed, not the whole
// cache again.
//
// ONNX `Attention` with a past returns `present` = past + new, and Optimum's I/O hands every layer's present back out
// of the run: the whole cache copied into fresh output buffers each step (and 2L output tensors for onnxruntime-node
// to wrap). The runtime can keep the cache in buffers of its own instead (runtime/append-kv-cache.ts): it feeds them
// as the past, padded to a capacity (unused slots masked by the attention bias), and writes the new positions into
// them after the run. The saving grows with the past and the batch (docs/design.md, "Graph derivations").
//
// Output `${prefix}kv_new`: [2L * B, S, kvHeads * headDim], block 2l the keys of layer l and block 2l + 1 its values,
// each block [B, S, kvHeads * headDim] (the Attention node's 3-D key and value inputs, after rotary). For a draft
// chain (draft-chain.ts), whose step j feeds on step j - 1's present, S covers every step's positions in order.
// The `present` values stay in the graph (the CPU kernel requires them when a past is given) but are no longer
// outputs.
//
// `packPast`: the 2L past inputs become one, `${prefix}past_key_values` [2L * B, kvHeads, slots, headDim] (blocks in
// the order above), cut by one Split. onnxruntime-node pays a fixed cost per input tensor, and at batch 1 the Split's
// copy costs less than the inputs it saves; in a batch the copy costs more, so only single-sequence passes use it.
import { graphOf, type Graph, type ModelProto } from '../../onnx/onnx-proto.ts';

export const KV_NEW = 'kv_new';
export const PACKED_PAST = 'past_key_values';
const PAST_KEY = /^past_key_values\.(\d+)\.key$/;

/**
 * Replaces the `${prefix}present.N.key|value` outputs by `${prefix}kv_new` (above), in place. Returns false, leaving
 * the model as it was, where the graph is not one it understands: each layer's past must reach default-domain
 * Attention nodes (inputs Q, K, V, bias, past_key, past_value; outputs Y, present_key, present_value) with 3-D keys.
 */
export function withAppendedKv(model: ModelProto, prefix = '', o: { packPast?: boolean } = {}): boolean {
  const g = graphOf(model);
  const opset = Number(model.opsetImport?.find((x) => !x.domain)?.version ?? 0);
  if (o.packPast && opset < 18) return false; // Split's num_outputs
  const layerOf = new Map<string, number>();
  for (const i of g.input) {
    const m = i.name?.startsWith(prefix) ? PAST_KEY.exec(i.name.slice(prefix.length)) : null;
    if (m) layerOf.set(i.name!, Number(m[1]));
  }
  const numLayers = layerOf.size;
  if (numLayers === 0) return false;
  const past = g.input.find((i) => i.name === `${prefix}past_key_values.0.key`);
  const dims = past?.type?.tensorType?.shape?.dim ?? [];
  const [heads, headDim] = [Number(dims[1]?.dimValue ?? 0), Number(dims[3]?.dimValue ?? 0)];
  if (dims.length !== 4 || !(heads > 0) || !(headDim > 0)) return false;

  // Each layer's Attention nodes in graph order (one per chain step), followed through present -> past, and through
  // the Casts of fp16 variants (quant/fp16-conversion.ts: a float16 past is cast to float32 before Attention; then the
  // new keys and values are float32 inside, and cast back to the cache type on the way out).
  const steps: { key: string; value: string }[][] = Array.from({ length: numLayers }, () => []);
  let cast = false;
  for (const n of g.node) {
    if (n.opType === 'Cast' && !n.domain && n.input.length === 1 && layerOf.has(n.input[0])) {
      layerOf.set(n.output[0], layerOf.get(n.input[0])!);
      cast = true;
      continue;
    }
    if (n.opType !== 'Attention' || n.domain || n.input.length < 6) continue;
    const layer = layerOf.get(n.input[4]);
    if (layer === undefined) continue;
    if (n.output.length < 3 || !n.output[1] || !n.output[2]) return false;
    steps[layer].push({ key: n.input[1], value: n.input[2] });
    layerOf.set(n.output[1], layer);
  }
  if (steps.some((s) => s.length === 0 || s.length !== steps[0].length)) return false;
  if (g.node.some((n) => n.opType === 'RotaryEmbedding' && !n.attribute?.some((a) => a.name === 'num_heads'))) return false; // 4-D keys
  const presents = new Set<string>();
  for (let l = 0; l < numLayers; l++) for (const part of ['key', 'value']) presents.add(`${prefix}present.${l}.${part}`);
  if (![...presents].every((p) => g.output.some((o) => o.name === p))) return false;
  const output = prefix + KV_NEW;
  const packed = prefix + PACKED_PAST;
  const taken = (name: string) => g.input.some((i) => i.name === name) || g.node.some((n) => n.output.includes(name));
  if (taken(output) || taken(`${output}_computed`) || (o.packPast && taken(packed))) return false;

  const INT = 2;
  const added: Graph['node'] = [];
  const blocks: string[] = [];
  for (let l = 0; l < numLayers; l++) {
    for (const part of ['key', 'value'] as const) {
      const values = steps[l].map((s) => s[part]);
      if (values.length === 1) {
        blocks.push(values[0]);
        continue;
      }
      const name = `${prefix}kv_new.${l}.${part}`;
      added.push({ name: `${name}.Concat`, opType: 'Concat', domain: '', input: values, output: [name], attribute: [{ name: 'axis', type: INT, i: 1 }] });
      blocks.push(name);
    }
  }
  const elemType = past!.type!.tensorType!.elemType!;
  const concat = cast ? `${output}_computed` : output;
  added.push({ name: `${output}.Concat`, opType: 'Concat', domain: '', input: blocks, output: [concat], attribute: [{ name: 'axis', type: INT, i: 0 }] });
  if (cast) added.push({ name: `${output}.Cast`, opType: 'Cast', domain: '', input: [concat], output: [output], attribute: [{ name: 'to', type: INT, i: elemType }] });
  g.node.push(...added);
  const at = g.output.findIndex((o) => presents.has(o.name!));
  const outputs = g.output.filter((o) => !presents.has(o.name!));
  outputs.splice(at, 0, {
    name: output,
    type: { tensorType: { elemType: past!.type!.tensorType!.elemType, shape: { dim: [
      { dimParam: `${prefix}kv_blocks` }, { dimParam: `${prefix}kv_new_positions` }, { dimValue: heads * headDim }] } } },
  });
  g.output = outputs;
  if (o.packPast) {
    const pasts: string[] = [];
    for (let l = 0; l < numLayers; l++) for (const part of ['key', 'value']) pasts.push(`${prefix}past_key_values.${l}.${part}`);
    g.node.unshift({ name: `${packed}.Split`, opType: 'Split', domain: '', input: [packed], output: pasts,
      attribute: [{ name: 'axis', type: INT, i: 0 }, { name: 'num_outputs', type: INT, i: pasts.length }] });
    const first = g.input.findIndex((i) => pasts.includes(i.name!));
    const inputs = g.input.filter((i) => !pasts.includes(i.name!));
    inputs.splice(first, 0, { name: packed, type: { tensorType: { elemType: past!.type!.tensorType!.elemType, shape: { dim: [
      { dimParam: `${prefix}kv_blocks` }, { dimValue: heads }, { dimParam: `${prefix}past_sequence_length` }, { dimValue: headDim }] } } } });
    g.input = inputs;
  }
  (g as { valueInfo?: unknown[] }).valueInfo = [];
  return true;
}
