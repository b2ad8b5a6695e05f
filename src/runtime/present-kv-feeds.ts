// Feeds for graphs with Optimum's I/O: every layer's past in, every layer's present (past + new) out, caches as
// PresentKvCache (kv-cache.ts). Row b's past slots are right-aligned to the longest (left padding, masked out, as are
// holes left by rollbacks), its new tokens follow at the same slots for every row, and shorter rows are right-padded
// (masked out). Positions come from each cache's valid length.
import ort from 'onnxruntime-node';
import { BIAS_INPUT } from './graphs/bias-input.ts';
import { allocKv, type KvArray, type KvCache } from './kv-cache.ts';
import { PresentKvCache, type KvBatch } from './present-kv-cache.ts';
import { checkPositions, type ForwardRow, type GraphIo, type KvFeeds, type Pass } from './kv-feeds.ts';

export class PresentKvFeeds implements KvFeeds {
  /** Batched past buffers by capacity, reused across steps (inputs are only read during session.run). Padding
   * slots keep old values: they are masked out. */
  private readonly pastBuffers = new Map<number, KvArray[]>();

  constructor(private readonly io: GraphIo) {}

  newCache(): KvCache {
    const { folder, kvType } = this.io;
    // onnxruntime-genai graphs derive positions from attention_mask sums: no holes for them.
    return new PresentKvCache(folder.numLayers, folder.numKvHeads, folder.headDim, kvType, { allowHoles: folder.layout !== 'genai' });
  }

  buffers(): ArrayBufferLike[] {
    return [...this.pastBuffers.values()].flatMap((arrays) => arrays.filter(Boolean).map((a) => a.buffer));
  }

  private batchBuffer(index: number, size: number): KvArray {
    // Capacity in powers of two: the past grows by a position or so per step, and a view of the right length is fed.
    const capacity = 2 ** Math.ceil(Math.log2(Math.max(size, 1024)));
    let buffers = this.pastBuffers.get(capacity);
    if (!buffers) {
      if (this.pastBuffers.size >= 4) this.pastBuffers.delete(this.pastBuffers.keys().next().value!);
      this.pastBuffers.set(capacity, (buffers = []));
    }
    return (buffers[index] ??= allocKv(this.io.kvType, capacity)).subarray(0, size);
  }

  prepare(rows: ForwardRow[], extra: number): Pass {
    const io = this.io;
    const caches = rows.map((r) => r.cache as PresentKvCache);
    const B = rows.length;
    const { numKvHeads: KV, headDim: hd } = io.folder;
    const S = Math.max(...rows.map((r) => r.tokens.length));
    checkPositions(io, rows, extra);
    const slots = caches.map((c) => c.reserve());
    // The same rows, in the same order, as a batched pass they all reside in: its present is this pass's past.
    const batch = caches[0].residence?.batch;
    const reuse = B > 1 && batch !== undefined && batch.rows === B && caches.every((c, b) => c.residence?.batch === batch && c.residence.row === b);
    const tensors = reuse ? (batch.handle as Record<string, ort.Tensor>) : null;
    const P = reuse ? batch.total : Math.max(...slots);
    const T = P + S;

    // Scratch layout: ids [B, S], positions [B, S], mask [B, T].
    // (Indices inline rather than through a helper closure: tsx wraps each named closure it creates in a __name call.)
    const { words, stride, low } = io.scratch.ints(2 * B * S + B * T);
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

    const feeds: Record<string, ort.Tensor> = { input_ids: io.scratch.intTensor(0, [B, S]) };
    if (io.hasMaskInput) feeds.attention_mask = io.scratch.intTensor(maskAt, [B, T]);
    if (io.hasPositionIds) feeds.position_ids = io.scratch.intTensor(B * S, [B, S]);
    if (io.bias) {
      // The graph's own rule (graphs/bias-input.ts): query i, at slot P + i, sees slot j iff j <= P + i and the mask
      // allows j.
      const { allowed, masked } = io.bias;
      const out = io.scratch.bias(B * S * T);
      for (let b = 0; b < B; b++) {
        for (let i = 0; i < S; i++) {
          const base = (b * S + i) * T;
          const limit = P + i;
          for (let j = 0; j < T; j++) out[base + j] = j <= limit && words[(maskAt + b * T + j) * stride + low] ? allowed : masked;
        }
      }
      feeds[BIAS_INPUT] = new ort.Tensor(io.bias.type, out.subarray(0, B * S * T), [B, 1, S, T]);
    }
    const layerSize = KV * hd;
    for (let l = 0; l < io.pastNames.length; l++) {
      for (const part of ['key', 'value'] as const) {
        if (tensors) {
          feeds[io.pastNames[l][part]] = tensors[io.presentNames[l][part]];
          continue;
        }
        let past: KvArray;
        if (B === 1) {
          // ORT's own present tensors of the last pass, fed back as they are.
          const adopted = (caches[0].adoptedHandle as Record<string, ort.Tensor> | null)?.[io.presentNames[l][part]];
          if (adopted) {
            feeds[io.pastNames[l][part]] = adopted;
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
        feeds[io.pastNames[l][part]] = new ort.Tensor(io.kvType, past, [B, KV, P, hd]);
      }
    }
    return { feeds, S, P, T: T + extra, slots };
  }

  commit(rows: ForwardRow[], out: ort.InferenceSession.OnnxValueMapType, pass: Pass, extra: number, prefix: string): void {
    let tensors = out;
    if (prefix) {
      // A fused step's draft part: its presents under their own names (what the next pass looks up).
      const renamed: Record<string, ort.Tensor> = {};
      for (const n of this.io.presentNames) {
        renamed[n.key] = out[prefix + n.key];
        renamed[n.value] = out[prefix + n.value];
      }
      tensors = renamed;
    }
    const present = this.io.presentNames.map((n) => ({ key: tensors[n.key].data as KvArray, value: tensors[n.value].data as KvArray }));
    if (rows.length === 1) {
      (rows[0].cache as PresentKvCache).adopt(present, rows[0].tokens.length + extra, tensors);
      return;
    }
    const kv: KvBatch = { present, total: pass.T, rows: rows.length, handle: tensors };
    rows.forEach((r, b) => (r.cache as PresentKvCache).residentIn(kv, b, pass.P - pass.slots[b], pass.T - pass.P, r.tokens.length + extra));
  }
}
