// The graphs the runtime derives from a model file at load (docs/design.md, "Graph derivations"): attention bias fed
// from JS (bias-input.ts), appended KV outputs (append-kv.ts) and, for single sequences, one packed past; loaded beside
// the model's external data where it has some.
import { rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { withBiasInput } from './bias-input.ts';
import { withAppendedKv } from './append-kv.ts';
import { decodeModel, encodeModel, type ModelProto } from '../../onnx/onnx-proto.ts';
import type { BiasValues } from '../feed-scratch.ts';

/** The graphs the runtime derives from a forge graph, encoded: `bytes` with an attention_bias input
 * (graphs/bias-input.ts), `run` also with appended KV outputs where asked and possible, `solo` that with one packed
 * past; and the bias values. Null where the graph is not one the derivation applies to. */
export function deriveGraphs(file: Uint8Array, appendKv: boolean, packSingle: boolean): { bytes: Uint8Array; run: Uint8Array;
  solo: Uint8Array | null; bias: BiasValues; append: boolean } | null {
  const derived = withBiasInput(decodeModel(file));
  if (!derived) return null;
  const { model, ...bias } = derived;
  const bytes = encodeModel(model);
  // Appended KV outputs (graphs/append-kv.ts) for batches, and (small models) with one packed past for single
  // sequences; for a small model the packed form is required, so that all its single-sequence passes feed alike.
  const solo = appendKv && packSingle ? decodeModel(bytes) : null;
  const append = appendKv && (solo === null || withAppendedKv(solo, '', { packPast: true })) && withAppendedKv(model);
  return { bytes, run: append ? encodeModel(model) : bytes, solo: append && solo ? encodeModel(solo) : null, bias, append };
}

/** Runs `use` on the path of `graph`, a graph derived from `modelPath` whose weights stay in the side files beside it.
 * ONNX Runtime reads external data relative to the model file and refuses paths (links included) that leave its
 * folder, so the graph is written beside the original under a hidden temporary name and removed once loaded. Null
 * where that folder is read-only (the caller runs the file as it is). */
export async function graphBeside<T>(graph: Uint8Array, modelPath: string, use: (path: string) => Promise<T>): Promise<T | null> {
  const path = join(dirname(modelPath), `.${basename(modelPath)}.derived-${process.pid}-${Math.random().toString(36).slice(2)}.onnx`);
  try {
    writeFileSync(path, graph, { flag: 'wx' });
  } catch {
    return null;
  }
  try {
    return await use(path);
  } finally {
    rmSync(path, { force: true });
  }
}

/** Gives a chain or fused step built from an appending decoder's graph the same outputs (graphs/append-kv.ts). */
export function appended(model: ModelProto, prefix: string, packPast: boolean): void {
  if (!withAppendedKv(model, prefix, { packPast })) throw new Error(`appended KV: the ${prefix || 'target '}part of a derived graph has no KV outputs to replace`);
}
