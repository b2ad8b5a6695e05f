// A decoder-with-past ONNX session and its batched forward pass: many sequences with different cache lengths and
// different numbers of new tokens in one session.run, logits for every new position of every sequence.
// This is the primitive that batched speculative verification stands on. For forge models (CPU or CUDA) it runs a graph
// derived by surgery on the model file: with the attention bias as an input (graphs/bias-input.ts) and only the new
// positions' keys and values as outputs (graphs/append-kv.ts, with the cache in buffers of the runtime's own:
// append-kv-cache.ts); for small ones also draft chains (graphs/draft-chain.ts) and fused speculative steps
// (graphs/speculative-step.ts).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { BIAS_INPUT } from './graphs/bias-input.ts';
import { deriveGraphs, graphBeside } from './graphs/derive.ts';
import { decodeModel, type ModelProto } from '../onnx/onnx-proto.ts';
import { openModelFolder, type Dtype, type ModelFolder } from './model-folder.ts';
import { createSession, type Device } from './execution-provider.ts';
import { runsDirectly, type OrtSession } from './ort-session.ts';
import type ort from 'onnxruntime-node';
import type { KvCache, KvType } from './kv-cache.ts';
import { FeedScratch, type BiasValues } from './feed-scratch.ts';
import { logitsOf, type ForwardRow, type KvFeeds } from './kv-feeds.ts';
import { DraftPasses, type FusedStepResult, type PassIo } from './draft-passes.ts';
import { PresentKvFeeds } from './present-kv-feeds.ts';
import { AppendKvFeeds } from './append-kv-feeds.ts';

export type { ForwardRow } from './kv-feeds.ts';

export interface DecoderOptions {
  dtype?: Dtype;
  device?: Device;
  threads?: number;
  log?: (message: string) => void;
  /** Run a forge graph with its attention bias fed from JS where that applies (graphs/bias-input.ts). Default true;
   * false runs the file as it is (tests compare the two). */
  biasInput?: boolean;
  /** Where the attention bias is fed from JS, also return only the new positions' keys and values and keep the cache
   * in the runtime's buffers (graphs/append-kv.ts). Default true; false keeps Optimum's present outputs. */
  appendKv?: boolean;
  /** With appended KV, run single sequences' passes on a second session whose graph takes one packed past. Default:
   * for files under 16 MB (it holds a second copy of the weights); false feeds a past per layer and part. */
  packedPast?: boolean;
  /** CPU passes run without an event-loop turn each (ort-session.ts). Default true; false runs them through
   * onnxruntime-node's public session (benches compare the two). */
  directRuns?: boolean;
  /** Profile the main session's passes (execution-provider.ts); endProfiling writes the file. */
  profilePrefix?: string;
  /** ONNX Runtime's memory patterns on CPU. Default: for models under 64 MB (execution-provider.ts
   * usesMemoryPatterns); benches compare the two. */
  memoryPatterns?: boolean;
}

// Draft chains decode the graph in JS and hold one more session (a copy of the weights) per chain length: only for
// small drafts, where a pass is mostly fixed cost and chains pay. The same bound decides the packed-past session.
export const CHAIN_MAX_BYTES = 16 * 1024 * 1024;
// Forge graphs up to this size are derived at load (attention bias from JS, appended KV: graphs/bias-input.ts,
// graphs/append-kv.ts): decoding and re-encoding the protobuf takes about a second and several times the file in
// memory for a file of this order, and pays back in every step (docs/design.md, "Graph derivations"). Beyond it, the
// file runs as it is, unless its weights are in a side file (external data): then the graph alone is decoded.
const DERIVE_MAX_BYTES = 1024 * 1024 * 1024;
const KV_NAME = /^past_key_values\.(\d+)\.(key|value)$/;

export class Decoder {
  readonly kvType: KvType;
  private readonly pastNames: { key: string; value: string }[];
  /** Scratch memory of this decoder's feeds (a decoder runs one pass at a time). */
  private readonly scratch: FeedScratch;
  /** How passes feed the cache and take the KV back: Optimum's presents or appended KV (kv-feeds.ts). */
  private readonly kv: KvFeeds;
  /** Forward passes run so far (tests and metrics). */
  numForwards = 0;

  /** Draft chains and fused steps of this decoder as a draft, built on first use. */
  private readonly draftPasses = new DraftPasses(this);
  private threads = 0;
  private directRuns = true;
  /** Weights in a side file: graphs built from this one's bytes (chains, fused steps) could not find them. */
  private externalData = false;

  private constructor(readonly folder: ModelFolder, readonly session: OrtSession, readonly device: 'cpu' | 'cuda',
    private readonly modelBytes: number,
    /** The derived graph's bias and kind; `bytes`: the graph (before appended KV) that chains and fused steps are built
     * from, kept for small models only. */
    private readonly derived: { bytes: Uint8Array | null; bias: BiasValues; append: boolean } | null,
    /** With appended KV: the same graph with one packed past input, for passes of a single sequence (graphs/append-kv.ts). */
    private readonly solo: OrtSession | null) {
    const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
    const where = `${folder.modelPath}`;
    for (const required of ['input_ids', derived ? BIAS_INPUT : 'attention_mask']) {
      if (!inputs.has(required)) throw new Error(`${where}: graph has no "${required}" input (inputs: ${session.inputNames.join(', ')})`);
    }
    if (!session.outputNames.includes('logits')) throw new Error(`${where}: graph has no "logits" output`);
    const kvInputs = session.inputNames.filter((n) => KV_NAME.test(n));
    if (kvInputs.length === 0) {
      const stacked = session.inputNames.filter((n) => /^past_\d+$/.test(n));
      throw new Error(`${where}: no past_key_values.N.key|value inputs` + (stacked.length
        ? ` (it uses stacked past_N caches, the GPT-2 layout of onnxruntime-genai exports, which this server does not run; ` +
          `re-export with Optimum for past_key_values.N.key/value)` : ''));
    }
    this.pastNames = Array.from({ length: folder.numLayers }, (_, i) => ({ key: `past_key_values.${i}.key`, value: `past_key_values.${i}.value` }));
    const presentNames = Array.from({ length: folder.numLayers }, (_, i) => ({ key: `present.${i}.key`, value: `present.${i}.value` }));
    for (const { key, value } of this.pastNames) {
      if (!inputs.has(key) || !inputs.has(value)) {
        throw new Error(`${where}: config says ${folder.numLayers} layers but the graph lacks ${key}/${value}`);
      }
    }
    const kvMeta = inputs.get(this.pastNames[0].key)!;
    const kvType = kvMeta.isTensor ? kvMeta.type : undefined;
    if (kvType !== 'float32' && kvType !== 'float16') throw new Error(`${where}: KV cache type ${kvType} is not supported (float32 or float16)`);
    this.kvType = kvType;
    const shape = kvMeta.isTensor ? kvMeta.shape : [];
    if (typeof shape[1] === 'number' && shape[1] !== folder.numKvHeads) {
      throw new Error(`${where}: KV input has ${shape[1]} heads but the config says ${folder.numKvHeads}`);
    }
    const idsMeta = inputs.get('input_ids')!;
    this.scratch = new FeedScratch(idsMeta.isTensor && idsMeta.type === 'int32' ? 'int32' : 'int64', derived?.bias.type ?? null);
    const io = { folder, kvType, pastNames: this.pastNames, presentNames, hasMaskInput: inputs.has('attention_mask'),
      hasPositionIds: inputs.has('position_ids'), bias: derived?.bias ?? null, scratch: this.scratch };
    this.kv = derived?.append ? new AppendKvFeeds(io, solo !== null) : new PresentKvFeeds(io);
  }

  static async open(dir: string, o: DecoderOptions = {}): Promise<Decoder> {
    const folder = openModelFolder(dir, o.dtype ?? 'fp32');
    // Weights over 2 GB live in a side file (Optimum's `model.onnx_data`), which ONNX Runtime finds relative to the
    // model's path: a graph derived from such a model is loaded from beside them (graphBeside).
    const sideFile = `${folder.modelPath}_data`;
    const external = existsSync(sideFile);
    const bytes = statSync(folder.modelPath).size + (external ? statSync(sideFile).size : 0);
    // A forge graph runs with its attention bias fed from JS (graphs/bias-input.ts: its ~14 mask nodes are a tenth of a
    // small model's step) and, by default, returns only the new positions' KV (graphs/append-kv.ts): on CUDA the latter
    // also halves what crosses to the host per pass (Node feeds and fetches host tensors: the past goes to the device
    // either way, but only the new positions come back). Small ones also get a session with one packed past for
    // single sequences (a second copy of the weights).
    const small = bytes < CHAIN_MAX_BYTES;
    let derived = (o.biasInput ?? true) && folder.layout === 'hf' && (external || bytes < DERIVE_MAX_BYTES)
      ? deriveGraphs(readFileSync(folder.modelPath), o.appendKv ?? true, o.packedPast ?? small) : null;
    const sessionOptions = { device: o.device ?? 'cpu', threads: o.threads ?? 0, log: o.log, directRuns: o.directRuns, profilePrefix: o.profilePrefix,
      memoryPatterns: o.memoryPatterns };
    let opened = derived && external ? await graphBeside(derived.run, folder.modelPath, (path) => createSession(path, bytes, sessionOptions)) : null;
    if (derived && external && !opened) {
      o.log?.(`${folder.modelPath}: its folder is read-only, so the graph derived from it cannot sit beside its external data; running it as it is`);
      derived = null;
    }
    opened ??= await createSession(derived?.run ?? folder.modelPath, bytes, sessionOptions);
    const { session, device } = opened;
    let solo: OrtSession | null = null;
    try {
      // On the device the main session got (an `auto` that fell back is on the CPU).
      if (derived?.solo) {
        const soloBytes = derived.solo;
        const soloOptions = { device, threads: o.threads ?? 0, directRuns: o.directRuns, memoryPatterns: o.memoryPatterns };
        const made = external ? await graphBeside(soloBytes, folder.modelPath, (path) => createSession(path, bytes, soloOptions))
          : await createSession(soloBytes, soloBytes.length, soloOptions);
        if (!made) throw new Error(`${folder.modelPath}: its folder became read-only while loading`);
        solo = made.session;
      }
      const kept = derived && { bytes: small ? derived.bytes : null, bias: derived.bias, append: derived.append };
      const decoder = new Decoder(folder, session, device, bytes, kept, solo);
      decoder.threads = o.threads ?? 0;
      decoder.directRuns = o.directRuns ?? true;
      decoder.externalData = external;
      return decoder;
    } catch (err) {
      await solo?.release();
      await session.release();
      throw err;
    }
  }

  /** Whether the cache lives in the runtime's buffers and passes return only new positions (graphs/append-kv.ts). */
  get appendsKv(): boolean {
    return this.derived?.append ?? false;
  }

  /** Whether passes feed the attention bias computed in JS (a derived graph, graphs/bias-input.ts). */
  get feedsAttentionBias(): boolean {
    return this.derived !== null;
  }

  /** Whether this decoder's passes run on direct sessions (ort-session.ts: no event-loop turn per pass). */
  get runsDirectly(): boolean {
    return runsDirectly(this.session);
  }

  /** Whether a pass can append several positions to a cache that holds some already: what verifying drafts needs.
   * Some exports cannot (onnxruntime-genai's attention-mask reshaping fails there); found by trying, on a scratch
   * cache. */
  async takesSeveralPositionsAfterPast(): Promise<boolean> {
    const cache = this.newCache();
    try {
      await this.forward([{ cache, tokens: [0] }]);
      // A graph that cannot fails here, by design: ONNX Runtime's own error log would only alarm (fatal only).
      await this.forward([{ cache, tokens: [0, 0] }], { logSeverityLevel: 4 });
      return true;
    } catch {
      return false;
    } finally {
      cache.clear();
    }
  }

  /** Writes the profile of a decoder opened with profilePrefix (its passes since it was opened). */
  endProfiling(): void {
    this.session.endProfiling?.();
  }

  get vocabSize(): number {
    return this.folder.vocabSize;
  }

  newCache(): KvCache {
    return this.kv.newCache();
  }

  /** KV memory this decoder keeps between passes beyond its caches' own (past buffers of batched passes). */
  feedBuffers(): ArrayBufferLike[] {
    return this.kv.buffers();
  }

  /** One session.run for all rows (layout: prepare). Returns logits[row][position] and appends the new K/V to every
   * cache. */
  async forward(rows: ForwardRow[], options?: ort.InferenceSession.RunOptions): Promise<Float32Array[][]> {
    if (rows.length === 0) return [];
    const pass = this.kv.prepare(rows, 0);
    const out = await (rows.length === 1 && this.solo ? this.solo : this.session).run(pass.feeds, options);
    this.numForwards++;
    this.kv.commit(rows, out, pass, 0, '');
    return logitsOf(out.logits, rows, pass.S);
  }

  /** Whether greedy drafts can come from a draft chain: a small flat graph with Hugging Face layout on the CPU. */
  get canChain(): boolean {
    return this.folder.layout === 'hf' && this.device === 'cpu' && this.modelBytes < CHAIN_MAX_BYTES && !this.externalData;
  }

  /**
   * Greedy drafting of `steps` tokens after `row.tokens` in one session.run (graphs/draft-chain.ts). The cache ends
   * up holding row.tokens and the first steps - 1 drafts, as if they had been fed one pass at a time.
   */
  draftChain(row: ForwardRow, steps: number): Promise<number[]> {
    return this.draftPasses.chain(row, steps);
  }

  /** Whether this draft and `target` can run fused speculative steps (speculativeStep): both small flat graphs
   * with Hugging Face layout on the CPU. */
  canFuseWith(target: Decoder): boolean {
    // (Two decoders: a pass's integer feeds live in each decoder's own scratch memory.)
    return target !== this && this.canChain && target.canChain;
  }

  /** One fused speculative step of a single stream with `target` (draft-passes.ts). */
  speculativeStep(target: Decoder, draftRow: ForwardRow, targetCache: KvCache, pending: number, steps: number,
    sampled?: { temperature: number; uniforms: number[] }): Promise<FusedStepResult> {
    return this.draftPasses.fused(target, draftRow, targetCache, pending, steps, sampled);
  }

  /** Builds (once) the draft chain of `steps` tokens (tens of ms); rejects where the graph cannot be chained. */
  async prepareChain(steps: number): Promise<void> {
    await this.draftPasses.chainSession(steps);
  }

  /** Builds (once) the fused step of `steps` draft tokens with `target`, greedy or sampled; rejects where the graphs
   * cannot be fused. */
  async prepareStep(target: Decoder, steps: number, sampled = false): Promise<void> {
    await this.draftPasses.stepSession(target, steps, sampled);
  }

  /** Runtime-internal: what draft passes (draft-passes.ts) drive on a draft and on its target. */
  get passIo(): PassIo {
    return {
      kv: this.kv, scratch: this.scratch, appendsKv: this.appendsKv, threads: this.threads, directRuns: this.directRuns,
      graph: () => this.graph(), counted: () => void this.numForwards++,
    };
  }

  /** A fresh copy of the graph this decoder's session runs (the derived one, if any), with Optimum's present outputs
   * still (chains and fused steps are built on those, then given appended KV outputs). */
  private graph(): ModelProto {
    if (this.derived && !this.derived.bytes) throw new Error('graph surgery on a large derived graph (its bytes are not kept)');
    return decodeModel(this.derived?.bytes ?? readFileSync(this.folder.modelPath));
  }

  async close(): Promise<void> {
    await this.draftPasses.close();
    await this.solo?.release();
    await this.session.release();
  }
}
