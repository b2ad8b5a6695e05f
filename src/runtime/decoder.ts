// A decoder-with-past ONNX session and its batched forward pass: many sequences with different cache lengths and
// different numbers of new tokens in one session.run, logits for every new position of every sequence.
// This is the primitive that batched speculative verification stands on. For small models on the CPU it also runs
// graphs derived by surgery on the model file: with the attention bias as an input (quant/bias-input.ts) and only the
// new positions' keys and values as outputs (quant/append-kv.ts, with the cache in buffers of the runtime's own:
// append-kv-cache.ts), draft chains (quant/draft-chain.ts) and fused speculative steps (quant/speculative-step.ts).
import ort from 'onnxruntime-node';
import { readFileSync, statSync } from 'node:fs';
import { buildDraftChain } from '../quant/draft-chain.ts';
import { buildSpeculativeStep } from '../quant/speculative-step.ts';
import { BIAS_INPUT, withBiasInput } from '../quant/bias-input.ts';
import { KV_NEW, PACKED_PAST, withAppendedKv } from '../quant/append-kv.ts';
import { decodeModel, encodeModel, type ModelProto } from '../quant/onnx-proto.ts';
import { openModelFolder, type Dtype, type ModelFolder } from './model-folder.ts';
import { createSession, type Device } from './execution-provider.ts';
import { PresentKvCache, allocKv, type KvArray, type KvBatch, type KvCache, type KvType } from './kv-cache.ts';
import { AppendKvCache } from './append-kv-cache.ts';
import { halfToFloatArray } from './float16.ts';

export interface ForwardRow {
  cache: KvCache;
  /** New tokens to append after the cache's `length` positions. */
  tokens: number[];
}

export interface DecoderOptions {
  dtype?: Dtype;
  device?: Device;
  threads?: number;
  log?: (message: string) => void;
  /** Run a forge graph with its attention bias fed from JS where that applies (quant/bias-input.ts). Default true;
   * false runs the file as it is (tests compare the two). */
  biasInput?: boolean;
  /** Where the attention bias is fed from JS, also return only the new positions' keys and values and keep the cache
   * in the runtime's buffers (quant/append-kv.ts). Default true; false keeps Optimum's present outputs. */
  appendKv?: boolean;
}

// Draft chains decode the graph in JS and hold one more session (a copy of the weights) per chain length: only for
// small drafts, where a pass is mostly fixed cost and chains pay.
const CHAIN_MAX_BYTES = 16 * 1024 * 1024;
const KV_NAME = /^past_key_values\.(\d+)\.(key|value)$/;
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

export class Decoder {
  readonly kvType: KvType;
  private readonly idsType: 'int64' | 'int32';
  private readonly hasPositionIds: boolean;
  private readonly pastNames: { key: string; value: string }[];
  private readonly presentNames: { key: string; value: string }[];
  /** Batched past buffers by capacity, reused across steps (inputs are only read during session.run). Padding
   * slots keep old values: they are masked out. */
  private readonly pastBuffers = new Map<number, KvArray[]>();
  /** Forward passes run so far (tests and metrics). */
  numForwards = 0;

  /** Draft chains (quant/draft-chain.ts) by number of steps, built on first use. */
  private readonly chains = new Map<number, Promise<ort.InferenceSession>>();
  /** Fused speculative steps (quant/speculative-step.ts) of this draft with a target, by number of draft steps. */
  private readonly fusedSteps = new Map<Decoder, Map<number, Promise<ort.InferenceSession>>>();
  private threads = 0;
  private readonly hasMaskInput: boolean;
  /** Where the session runs a graph derived with an attention_bias input (quant/bias-input.ts): the bias values for
   * an allowed and a masked key, as float32 values or float16 bits. */
  private readonly bias: { type: 'float32' | 'float16'; allowed: number; masked: number } | null;
  /** Whether the session's graph returns only the new positions' KV (quant/append-kv.ts): caches are AppendKvCaches. */
  private readonly append: boolean;

  private constructor(readonly folder: ModelFolder, readonly session: ort.InferenceSession, readonly device: 'cpu' | 'cuda',
    private readonly modelBytes: number, private readonly derived: { bytes: Uint8Array; bias: NonNullable<Decoder['bias']>; append: boolean } | null,
    /** With appended KV: the same graph with one packed past input, for passes of a single sequence (quant/append-kv.ts). */
    private readonly solo: ort.InferenceSession | null) {
    const inputs = new Map(session.inputMetadata.map((m) => [m.name, m]));
    const where = `${folder.modelPath}`;
    for (const required of ['input_ids', derived ? BIAS_INPUT : 'attention_mask']) {
      if (!inputs.has(required)) throw new Error(`${where}: graph has no "${required}" input (inputs: ${session.inputNames.join(', ')})`);
    }
    this.hasMaskInput = inputs.has('attention_mask');
    this.bias = derived?.bias ?? null;
    this.append = derived?.append ?? false;
    if (!session.outputNames.includes('logits')) throw new Error(`${where}: graph has no "logits" output`);
    const kvInputs = session.inputNames.filter((n) => KV_NAME.test(n));
    if (kvInputs.length === 0) {
      const stacked = session.inputNames.filter((n) => /^past_\d+$/.test(n));
      throw new Error(`${where}: no past_key_values.N.key|value inputs` + (stacked.length
        ? ` (it uses stacked past_N caches, the GPT-2 layout of onnxruntime-genai exports, which this server does not run; ` +
          `re-export with Optimum for past_key_values.N.key/value)` : ''));
    }
    this.pastNames = Array.from({ length: folder.numLayers }, (_, i) => ({ key: `past_key_values.${i}.key`, value: `past_key_values.${i}.value` }));
    this.presentNames = Array.from({ length: folder.numLayers }, (_, i) => ({ key: `present.${i}.key`, value: `present.${i}.value` }));
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
    this.idsType = idsMeta.isTensor && idsMeta.type === 'int32' ? 'int32' : 'int64';
    this.hasPositionIds = inputs.has('position_ids');
  }

  static async open(dir: string, o: DecoderOptions = {}): Promise<Decoder> {
    const folder = openModelFolder(dir, o.dtype ?? 'fp32');
    const bytes = statSync(folder.modelPath).size;
    // A small forge graph on the CPU runs with its attention bias fed from JS (quant/bias-input.ts): its ~14 mask
    // nodes are a tenth of a step there. Large models would gain nothing worth decoding their protobuf for.
    const derived = (o.biasInput ?? true) && (o.device ?? 'cpu') === 'cpu' && folder.layout === 'hf' && bytes < CHAIN_MAX_BYTES
      ? deriveWithBias(readFileSync(folder.modelPath), o.appendKv ?? true) : null;
    const { session, device } = await createSession(derived?.run ?? folder.modelPath, bytes,
      { device: o.device ?? 'cpu', threads: o.threads ?? 0, log: o.log });
    let solo: ort.InferenceSession | null = null;
    try {
      if (derived?.solo) solo = (await createSession(derived.solo, derived.solo.length, { device: 'cpu', threads: o.threads ?? 0 })).session;
      const decoder = new Decoder(folder, session, device, bytes, derived, solo);
      decoder.threads = o.threads ?? 0;
      return decoder;
    } catch (err) {
      await solo?.release();
      await session.release();
      throw err;
    }
  }

  /** Whether the cache lives in the runtime's buffers and passes return only new positions (quant/append-kv.ts). */
  get appendsKv(): boolean {
    return this.append;
  }

  /** Whether passes feed the attention bias computed in JS (a derived graph, quant/bias-input.ts). */
  get feedsAttentionBias(): boolean {
    return this.bias !== null;
  }

  get vocabSize(): number {
    return this.folder.vocabSize;
  }

  newCache(): KvCache {
    if (this.append) return new AppendKvCache(this.folder.numLayers, this.folder.numKvHeads, this.folder.headDim, this.kvType);
    // onnxruntime-genai graphs derive positions from attention_mask sums: no holes for them.
    return new PresentKvCache(this.folder.numLayers, this.folder.numKvHeads, this.folder.headDim, this.kvType,
      { allowHoles: this.folder.layout !== 'genai' });
  }

  /** Scratch memory for a pass's integer feeds (ids, positions, mask) in the graph's id type, reused from pass to
   * pass: ORT reads feeds only during session.run, and a decoder runs one pass at a time (as its batched past
   * buffers assume too). */
  private scratch: BigInt64Array | Int32Array = new Int32Array(0) as Int32Array;
  /** 32-bit words of the scratch: element i's value is written at [i * stride + low] (for int64, its low word; high
   * words stay 0, values are non-negative). */
  private scratchWords: Int32Array = new Int32Array(0);

  private intScratch(total: number): { words: Int32Array; stride: number; low: number } {
    const int64 = this.idsType === 'int64';
    if (this.scratch.length < total) {
      const capacity = 2 ** Math.ceil(Math.log2(Math.max(total, 1024)));
      this.scratch = int64 ? new BigInt64Array(capacity) : new Int32Array(capacity);
      this.scratchWords = int64 ? new Int32Array(this.scratch.buffer) : (this.scratch as Int32Array);
    }
    const stride = int64 ? 2 : 1;
    this.scratchWords.fill(0, 0, total * stride);
    return { words: this.scratchWords, stride, low: int64 && !LITTLE_ENDIAN ? 1 : 0 };
  }

  private biasBuffer: Float32Array | Uint16Array = new Float32Array(0);

  /** Scratch for the attention bias of a pass (float32 values or float16 bits), reused as the int scratch is. */
  private biasScratch(n: number): Float32Array | Uint16Array {
    if (this.biasBuffer.length < n) {
      const capacity = 2 ** Math.ceil(Math.log2(Math.max(n, 1024)));
      this.biasBuffer = this.bias?.type === 'float16' ? new Uint16Array(capacity) : new Float32Array(capacity);
    }
    return this.biasBuffer;
  }

  /** A tensor over scratch elements [offset, offset + product(dims)). */
  private intTensor(offset: number, dims: number[]): ort.Tensor {
    const n = dims.reduce((a, b) => a * b, 1);
    return new ort.Tensor(this.idsType, this.scratch.subarray(offset, offset + n), dims);
  }

  private batchBuffer(index: number, size: number): KvArray {
    // Capacity in powers of two: the past grows by a position or so per step, and a view of the right length is fed.
    const capacity = 2 ** Math.ceil(Math.log2(Math.max(size, 1024)));
    let buffers = this.pastBuffers.get(capacity);
    if (!buffers) {
      if (this.pastBuffers.size >= 4) this.pastBuffers.delete(this.pastBuffers.keys().next().value!);
      this.pastBuffers.set(capacity, (buffers = []));
    }
    return (buffers[index] ??= allocKv(this.kvType, capacity)).subarray(0, size);
  }

  /** One session.run for all rows (layout: prepare). Returns logits[row][position] and appends the new K/V to every
   * cache. */
  async forward(rows: ForwardRow[]): Promise<Float32Array[][]> {
    if (rows.length === 0) return [];
    const pass = this.prepare(rows, 0);
    const out = await (rows.length === 1 && this.solo ? this.solo : this.session).run(pass.feeds);
    this.numForwards++;
    this.commit(rows, out, pass, 0);
    return logitsOf(out.logits, rows, pass.S);
  }

  /** Whether greedy drafts can come from a draft chain: a small flat graph with Hugging Face layout on the CPU. */
  get canChain(): boolean {
    return this.folder.layout === 'hf' && this.device === 'cpu' && this.modelBytes < CHAIN_MAX_BYTES;
  }

  /**
   * Greedy drafting of `steps` tokens after `row.tokens` in one session.run (quant/draft-chain.ts). The cache ends
   * up holding row.tokens and the first steps - 1 drafts, as if they had been fed one pass at a time.
   */
  async draftChain(row: ForwardRow, steps: number): Promise<number[]> {
    const session = await this.chainSession(steps);
    const pass = this.prepare([row], steps - 1);
    const out = await session.run(pass.feeds);
    this.numForwards++;
    this.commit([row], out, pass, steps - 1);
    return Array.from(out.draft_ids.data as BigInt64Array, Number);
  }

  /** Whether this draft and `target` can run fused speculative steps (speculativeStep): both small flat graphs
   * with Hugging Face layout on the CPU. */
  canFuseWith(target: Decoder): boolean {
    // (Two decoders: a pass's integer feeds live in each decoder's own scratch memory.)
    return target !== this && this.canChain && target.canChain;
  }

  /**
   * One fused speculative step of a single stream (quant/speculative-step.ts): greedy drafting of `steps` tokens
   * after `draftRow.tokens` with this draft, and the target's pass over `pending` and those drafts, in one
   * session.run. The draft cache ends up as draftChain leaves it; the target cache holds pending and every draft (the
   * caller rolls back what it rejects). Returns the drafts and the target's logits at each of its steps + 1 positions.
   */
  async speculativeStep(target: Decoder, draftRow: ForwardRow, targetCache: KvCache, pending: number, steps: number):
    Promise<{ drafts: number[]; logits: Float32Array[] }> {
    const session = await this.stepSession(target, steps);
    const targetRow: ForwardRow = { cache: targetCache, tokens: new Array<number>(steps + 1).fill(pending) };
    const d = this.prepare([draftRow], steps - 1);
    const t = target.prepare([targetRow], 0);
    // The target's ids start with the pending token: its first scratch element is pending_ids.
    const feeds: Record<string, ort.Tensor> = { pending_ids: target.intTensor(0, [1, 1]) };
    for (const name in t.feeds) if (name !== 'input_ids') feeds[name] = t.feeds[name];
    for (const name in d.feeds) feeds[this.prefixed(name)] = d.feeds[name];
    const out = await session.run(feeds);
    this.numForwards++;
    target.numForwards++;
    const draftOut: Record<string, ort.Tensor> = {};
    if (this.append) draftOut[KV_NEW] = out[this.prefixed(KV_NEW)];
    for (const n of this.append ? [] : this.presentNames) {
      draftOut[n.key] = out[this.prefixed(n.key)];
      draftOut[n.value] = out[this.prefixed(n.value)];
    }
    this.commit([draftRow], draftOut, d, steps - 1);
    target.commit([targetRow], out, t, 0);
    return { drafts: Array.from(out['draft.draft_ids'].data as BigInt64Array, Number), logits: logitsOf(out.logits, [targetRow], t.S)[0] };
  }

  /** Builds the draft chains of 1..maxSteps steps now (each takes tens of ms), and with `target` the fused steps
   * too, rather than on first use. */
  async prepareChains(maxSteps: number, target?: Decoder): Promise<void> {
    for (let steps = 1; steps <= maxSteps; steps++) {
      await this.chainSession(steps);
      if (target) await this.prepareStep(target, steps);
    }
  }

  private readonly prefixedNames = new Map<string, string>();
  /** A draft input or output's name inside a fused step (quant/speculative-step.ts), built once per name. */
  private prefixed(name: string): string {
    let p = this.prefixedNames.get(name);
    if (p === undefined) this.prefixedNames.set(name, (p = `draft.${name}`));
    return p;
  }

  /** A fresh copy of the graph this decoder's session runs (the derived one, if any), with Optimum's present outputs
   * still (chains and fused steps are built on those, then given appended KV outputs). */
  private graph(): ModelProto {
    return decodeModel(this.derived?.bytes ?? readFileSync(this.folder.modelPath));
  }

  /** Builds (once) the fused step of `steps` draft tokens with `target`; rejects where the graphs cannot be fused. */
  async prepareStep(target: Decoder, steps: number): Promise<void> {
    await this.stepSession(target, steps);
  }

  private chainSession(steps: number): Promise<ort.InferenceSession> {
    let chain = this.chains.get(steps);
    if (!chain) {
      const model = buildDraftChain(this.graph(), steps);
      if (this.append) appended(model, '', true);
      const bytes = encodeModel(model);
      chain = createSession(bytes, bytes.length, { device: 'cpu', threads: this.threads }).then((c) => c.session);
      this.chains.set(steps, chain);
    }
    return chain;
  }

  private stepSession(target: Decoder, steps: number): Promise<ort.InferenceSession> {
    let byTarget = this.fusedSteps.get(target);
    if (!byTarget) this.fusedSteps.set(target, (byTarget = new Map()));
    let step = byTarget.get(steps);
    if (!step) {
      const model = buildSpeculativeStep(this.graph(), target.graph(), steps);
      if (this.append) appended(model, this.prefixed(''), true);
      if (target.append) appended(model, '', true);
      const bytes = encodeModel(model);
      step = createSession(bytes, bytes.length, { device: 'cpu', threads: target.threads }).then((c) => c.session);
      byTarget.set(steps, step);
    }
    return step;
  }

  /**
   * Feeds for one session.run over all rows. Row b's past slots are right-aligned to the longest (left padding,
   * masked out, as are holes left by rollbacks), its new tokens follow at the same slots for every row, and shorter
   * rows are right-padded (masked out). Positions come from each cache's valid length. `present` will hold `extra`
   * more slots than `T` (a draft chain's own drafts).
   */
  private prepare(rows: ForwardRow[], extra: number) {
    if (rows.some((r) => r.tokens.length === 0)) throw new Error('forward: every row needs at least one new token');
    if (this.append) return this.prepareAppend(rows, extra);
    const caches = rows.map((r) => r.cache as PresentKvCache);
    const B = rows.length;
    const { numKvHeads: KV, headDim: hd } = this.folder;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    const longest = Math.max(...rows.map((r) => r.cache.length)) + S + extra;
    if (longest > this.folder.maxPositions) throw new Error(`forward: ${longest} positions exceed the model's ${this.folder.maxPositions}`);
    const slots = caches.map((c) => c.reserve());
    // The same rows, in the same order, as a batched pass they all reside in: its present is this pass's past.
    const batch = caches[0].residence?.batch;
    const reuse = B > 1 && batch !== undefined && batch.rows === B && caches.every((c, b) => c.residence?.batch === batch && c.residence.row === b);
    const tensors = reuse ? (batch.handle as Record<string, ort.Tensor>) : null;
    const P = reuse ? batch.total : Math.max(...slots);
    const T = P + S;

    // Scratch layout: ids [B, S], positions [B, S], mask [B, T].
    // (Indices inline rather than through a helper closure: tsx wraps each named closure it creates in a __name call.)
    const { words, stride, low } = this.intScratch(2 * B * S + B * T);
    const maskAt = 2 * B * S;
    for (let b = 0; b < B; b++) {
      const r = rows[b];
      const offset = P - slots[b];
      for (let j = 0; j < slots[b]; j++) words[(maskAt + b * T + offset + j) * stride + low] = caches[b].isValid(j);
      for (let i = 0; i < r.tokens.length; i++) {
        words[(b * S + i) * stride + low] = r.tokens[i];
        words[(B * S + b * S + i) * stride + low] = r.cache.length + i;
        words[(maskAt + b * T + P + i) * stride + low] = 1;
      }
    }

    const feeds: Record<string, ort.Tensor> = { input_ids: this.intTensor(0, [B, S]) };
    if (this.hasMaskInput) feeds.attention_mask = this.intTensor(maskAt, [B, T]);
    if (this.hasPositionIds) feeds.position_ids = this.intTensor(B * S, [B, S]);
    if (this.bias) {
      // The graph's own rule (quant/bias-input.ts): query i, at slot P + i, sees slot j iff j <= P + i and the mask
      // allows j.
      const { allowed, masked } = this.bias;
      const out = this.biasScratch(B * S * T);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < S; i++) {
          const base = (b * S + i) * T;
          const limit = P + i;
          for (let j = 0; j < T; j++) out[base + j] = j <= limit && words[(maskAt + b * T + j) * stride + low] ? allowed : masked;
        }
      }
      feeds[BIAS_INPUT] = new ort.Tensor(this.bias.type, out.subarray(0, B * S * T), [B, 1, S, T]);
    }
    const layerSize = KV * hd;
    for (let l = 0; l < this.pastNames.length; l++) {
      for (const part of ['key', 'value'] as const) {
        if (tensors) {
          feeds[this.pastNames[l][part]] = tensors[this.presentNames[l][part]];
          continue;
        }
        let past: KvArray;
        if (B === 1) {
          // ORT's own present tensors of the last pass, fed back as they are.
          const adopted = (caches[0].adoptedHandle as Record<string, ort.Tensor> | null)?.[this.presentNames[l][part]];
          if (adopted) {
            feeds[this.pastNames[l][part]] = adopted;
            continue;
          }
          past = caches[0].past(l)[part];
        } else {
          past = this.batchBuffer(2 * l + (part === 'key' ? 0 : 1), B * layerSize * P);
          caches.forEach((c, b) => {
            const src = c.past(l)[part];
            const n = slots[b];
            for (let h = 0; h < KV; h++) past.set(src.subarray(h * n * hd, (h + 1) * n * hd), ((b * KV + h) * P + (P - n)) * hd);
          });
        }
        feeds[this.pastNames[l][part]] = new ort.Tensor(this.kvType, past, [B, KV, P, hd]);
      }
    }
    return { feeds, S, P, T: T + extra, slots };
  }

  /**
   * Feeds for a pass over caches in the runtime's buffers (quant/append-kv.ts): the rows' shared home whole as the
   * past ([rows, kvHeads, capacity, headDim] per layer and part), row b's slots valid below its length; the new tokens
   * follow at slots capacity + i. No padding of the past: each row's slots start at 0 in its row.
   */
  private prepareAppend(rows: ForwardRow[], extra: number) {
    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    const caches = rows.map((r) => r.cache as AppendKvCache);
    const longest = Math.max(...caches.map((c) => c.length)) + S + extra;
    if (longest > this.folder.maxPositions) throw new Error(`forward: ${longest} positions exceed the model's ${this.folder.maxPositions}`);
    const home = AppendKvCache.homeFor(caches, S + extra);
    const C = home.capacity;
    const T = C + S;
    const { words, stride, low } = this.intScratch(2 * B * S);
    for (let b = 0; b < B; b++) {
      const tokens = rows[b].tokens;
      const length = caches[b].length;
      for (let i = 0; i < tokens.length; i++) {
        words[(b * S + i) * stride + low] = tokens[i];
        words[(B * S + b * S + i) * stride + low] = length + i;
      }
    }
    const feeds: Record<string, ort.Tensor> = { input_ids: this.intTensor(0, [B, S]) };
    if (this.hasPositionIds) feeds.position_ids = this.intTensor(B * S, [B, S]);
    // Query i of row b sees its row's valid slots and the pass's new slots up to its own (quant/bias-input.ts).
    const { allowed, masked, type } = this.bias!;
    const bias = this.biasScratch(B * S * T);
    for (let b = 0; b < B; b++) {
      const length = caches[b].length;
      for (let i = 0; i < S; i++) {
        const base = (b * S + i) * T;
        bias.fill(allowed, base, base + length);
        bias.fill(masked, base + length, base + C);
        bias.fill(allowed, base + C, base + C + i + 1);
        bias.fill(masked, base + C + i + 1, base + T);
      }
    }
    feeds[BIAS_INPUT] = new ort.Tensor(type, bias.subarray(0, B * S * T), [B, 1, S, T]);
    const { numKvHeads: KV, headDim: hd } = this.folder;
    if (B === 1) {
      // Passes of a single sequence (plain, chains, fused steps) run graphs with one packed past input.
      feeds[PACKED_PAST] = (home.packedFeed ??= new ort.Tensor(this.kvType, home.all, [home.blocks.length, KV, C, hd])) as ort.Tensor;
      return { feeds, S, P: C, T: T + extra, slots: [] as number[] };
    }
    const past = (home.feeds ??= home.blocks.map((block) => new ort.Tensor(this.kvType, block, [B, KV, C, hd]))) as ort.Tensor[];
    for (let l = 0; l < this.pastNames.length; l++) {
      feeds[this.pastNames[l].key] = past[2 * l];
      feeds[this.pastNames[l].value] = past[2 * l + 1];
    }
    return { feeds, S, P: C, T: T + extra, slots: [] as number[] };
  }

  private commit(rows: ForwardRow[], out: ort.InferenceSession.OnnxValueMapType, pass: { P: number; T: number; slots: number[] }, extra: number): void {
    if (this.append) {
      const kvNew = out[KV_NEW];
      const [blocks, positions] = kvNew.dims;
      const B = blocks / (2 * this.pastNames.length);
      rows.forEach((r, b) => (r.cache as AppendKvCache).append(kvNew.data as KvArray, B, positions, b, r.tokens.length + extra));
      return;
    }
    const present = this.presentNames.map((n) => ({ key: out[n.key].data as KvArray, value: out[n.value].data as KvArray }));
    if (rows.length === 1) {
      (rows[0].cache as PresentKvCache).adopt(present, rows[0].tokens.length + extra, out);
      return;
    }
    const kv: KvBatch = { present, total: pass.T, rows: rows.length, handle: out };
    rows.forEach((r, b) => (r.cache as PresentKvCache).residentIn(kv, b, pass.P - pass.slots[b], pass.T - pass.P, r.tokens.length + extra));
  }

  async close(): Promise<void> {
    for (const chain of this.chains.values()) await (await chain).release();
    for (const steps of this.fusedSteps.values()) for (const step of steps.values()) await (await step).release();
    await this.solo?.release();
    await this.session.release();
  }
}

/** Logits of every new position of every row: [row][position] views of one buffer (float16 widened). */
function logitsOf(logitsTensor: ort.Tensor, rows: ForwardRow[], S: number): Float32Array[][] {
  const V = Number(logitsTensor.dims[2]);
  const logits = logitsTensor.type === 'float16'
    ? halfToFloatArray(logitsTensor.data as Uint16Array)
    : (logitsTensor.data as Float32Array);
  return rows.map((r, b) => r.tokens.map((_, i) => logits.subarray((b * S + i) * V, (b * S + i + 1) * V)));
}

/** The graph with an attention_bias input (quant/bias-input.ts), encoded, and its bias values; null where the graph
 * is not one the derivation applies to. */
function deriveWithBias(file: Uint8Array, appendKv: boolean): { bytes: Uint8Array; run: Uint8Array; solo: Uint8Array | null;
  bias: { type: 'float32' | 'float16'; allowed: number; masked: number }; append: boolean } | null {
  const derived = withBiasInput(decodeModel(file));
  if (!derived) return null;
  const { model, ...bias } = derived;
  const bytes = encodeModel(model);
  // Appended KV outputs (quant/append-kv.ts) for batches, and with one packed past for single sequences; the packed
  // form is required of every appending graph, so that all single-sequence passes feed alike.
  const solo = appendKv ? decodeModel(bytes) : null;
  const append = solo !== null && withAppendedKv(solo, '', { packPast: true }) && withAppendedKv(model);
  return { bytes, run: append ? encodeModel(model) : bytes, solo: append ? encodeModel(solo!) : null, bias, append };
}

/** Gives a chain or fused step built from an appending decoder's graph the same outputs (quant/append-kv.ts). */
function appended(model: ModelProto, prefix: string, packPast: boolean): void {
  if (!withAppendedKv(model, prefix, { packPast })) throw new Error(`appended KV: the ${prefix || 'target '}part of a derived graph has no KV outputs to replace`);
}
