// Feeds for the graphs the runtime derives with appended KV outputs (graphs/append-kv.ts), caches as AppendKvCache
// (append-kv-cache.ts): the rows' shared home whole as the past, [rows, kvHeads, capacity, headDim] per layer and
// part (one packed input for a single row), row b's slots valid below its length; the new tokens follow at slots
// capacity + i. No padding of the past: each row's slots start at 0 in its row.
import ort from 'onnxruntime-node';
import { BIAS_INPUT } from './graphs/bias-input.ts';
import { KV_NEW, PACKED_PAST } from './graphs/append-kv.ts';
import { AppendKvCache } from './append-kv-cache.ts';
import { KvBufferPool } from './kv-buffer-pool.ts';
import type { KvArray, KvCache } from './kv-cache.ts';
import { checkPositions, type ForwardRow, type GraphIo, type KvFeeds, type Pass } from './kv-feeds.ts';

export class AppendKvFeeds implements KvFeeds {
  /** Freed homes' memory, reused by this decoder's caches (kv-buffer-pool.ts). */
  private readonly pool: KvBufferPool;

  /** `packSingle`: a single row's passes run graphs with one packed past input (small models: graphs/append-kv.ts). */
  constructor(private readonly io: GraphIo, private readonly packSingle: boolean) {
    if (!io.bias) throw new Error('appended KV feeds need a graph with an attention_bias input');
    this.pool = new KvBufferPool(io.kvType);
  }

  buffers(): ArrayBufferLike[] {
    // The caches' homes hold the KV; the pool's few freed buffers are memory kept for reuse, not KV held, and are not
    // counted (kv-buffer-pool.ts bounds them).
    return [];
  }

  newCache(): KvCache {
    const { folder, kvType } = this.io;
    return new AppendKvCache(folder.numLayers, folder.numKvHeads, folder.headDim, kvType, this.pool);
  }

  prepare(rows: ForwardRow[], extra: number): Pass {
    const io = this.io;
    const B = rows.length;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    checkPositions(io, rows, extra);
    const caches = rows.map((r) => r.cache as AppendKvCache);
    const home = AppendKvCache.homeFor(caches, S + extra);
    const C = home.capacity;
    const T = C + S;
    const { words, stride, low } = io.scratch.ints(2 * B * S);
    for (let b = 0; b < B; b++) {
      const tokens = rows[b].tokens;
      const length = caches[b].length;
      for (let i = 0; i < tokens.length; i++) {
        words[(b * S + i) * stride + low] = tokens[i];
        words[(B * S + b * S + i) * stride + low] = length + i;
      }
    }
    const feeds: Record<string, ort.Tensor> = { input_ids: io.scratch.intTensor(0, [B, S]) };
    if (io.hasPositionIds) feeds.position_ids = io.scratch.intTensor(B * S, [B, S]);
    // Query i of row b sees its row's valid slots and the pass's new slots up to its own (graphs/bias-input.ts).
    const { allowed, masked, type } = io.bias!;
    const bias = io.scratch.bias(B * S * T);
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
    const { numKvHeads: KV, headDim: hd } = io.folder;
    if (B === 1 && this.packSingle) {
      // Passes of a single sequence (plain, chains, fused steps) run graphs with one packed past input.
      feeds[PACKED_PAST] = (home.packedFeed ??= new ort.Tensor(io.kvType, home.all, [home.blocks.length, KV, C, hd])) as ort.Tensor;
    } else {
      const past = (home.feeds ??= home.blocks.map((block) => new ort.Tensor(io.kvType, block, [B, KV, C, hd]))) as ort.Tensor[];
      for (let l = 0; l < io.pastNames.length; l++) {
        feeds[io.pastNames[l].key] = past[2 * l];
        feeds[io.pastNames[l].value] = past[2 * l + 1];
      }
    }
    return { feeds, S, P: C, T: T + extra, slots: [] };
  }

  commit(rows: ForwardRow[], out: ort.InferenceSession.OnnxValueMapType, _pass: Pass, extra: number, prefix: string): void {
    const kvNew = out[prefix + KV_NEW];
    const [blocks, positions] = kvNew.dims;
    const B = blocks / (2 * this.io.pastNames.length);
    rows.forEach((r, b) => (r.cache as AppendKvCache).append(kvNew.data as KvArray, B, positions, b, r.tokens.length + extra));
  }
}
