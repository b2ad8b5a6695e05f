// A KvCache for graphs with Optimum's I/O (kv-cache.ts): per layer, keys and values as dense [kvHeads, slots, headDim] arrays in the model's KV
// dtype, ready to be fed as `past_key_values` without a copy.
//
// Slots are not positions. Speculative decoding appends k+1 positions and rolls most of them back almost every step;
// a rollback only marks the tail slots invalid (O(1) in the cache size), and the next pass feeds them with
// attention_mask 0 (positions come from position_ids, so a hole changes nothing the model computes). The holes are
// squeezed out only when they make up a large share of the slots, so the copy is amortised over many steps.
//
// With a batch of one, ONNX Runtime's `present` outputs become the cache as they are (no copy): the next pass feeds
// them back as `past`. After a batched pass each sequence stays *resident* in the batch's `present` (its slots are a
// right-aligned region of one row): if the next pass has the same rows in the same order, that `present` is fed back
// whole, and nothing is copied; a sequence is copied out into arrays of its own only when it is used otherwise.
// (Not preallocated `present` buffers written in place: onnxruntime-node's preallocated outputs cost more than its
// own allocations.) See docs/design.md, "The KV design".
import { allocKv, type KvArray, type KvCache, type KvType } from './kv-cache.ts';

export interface KvCacheOptions {
  /** Whether holes may be fed with attention_mask 0. Graphs that derive positions from mask sums (onnxruntime-genai's
   * GroupQueryAttention) need the valid slots contiguous: then every rollback is squeezed out before the next pass. */
  allowHoles?: boolean;
}

/** A batched pass's `present` arrays ([batch, kvHeads, total, headDim] per layer), which resident caches live in.
 * It lives as long as a cache resides in it. `handle`: the runtime's own objects for it (the decoder's tensors). */
export interface KvBatch {
  present: { key: KvArray; value: KvArray }[];
  total: number;
  rows: number;
  handle: unknown;
}

export class PresentKvCache implements KvCache {
  /** Valid positions (what the sequence sees). */
  length = 0;
  /** Slots in the arrays (valid ones and holes). */
  slots = 0;
  private valid = new Uint8Array(64);
  private layers: { key: KvArray; value: KvArray }[];
  /** Set while the slots live in row `row` of a batch's present, at [start, start + slots). */
  private resident: { batch: KvBatch; row: number; start: number } | null = null;
  /** The runtime's own objects for the arrays adopted last (the decoder's `present` tensors), while they are the cache. */
  private adopted: unknown = null;
  private readonly allowHoles: boolean;

  constructor(readonly numLayers: number, readonly numKvHeads: number, readonly headDim: number, readonly type: KvType,
    private readonly o: KvCacheOptions = {}) {
    this.allowHoles = o.allowHoles ?? true;
    this.layers = this.empty();
  }

  fork(length: number): PresentKvCache {
    if (length < 0 || length > this.length) throw new Error(`fork of ${length} positions outside [0, ${this.length}]`);
    const copy = new PresentKvCache(this.numLayers, this.numKvHeads, this.headDim, this.type, this.o);
    if (length === 0) return copy;
    this.materialize();
    const hd = this.headDim;
    const slots: number[] = [];
    for (let j = 0; j < this.slots && slots.length < length; j++) if (this.valid[j]) slots.push(j);
    const take = (src: KvArray): KvArray => {
      const dst = allocKv(this.type, this.numKvHeads * length * hd);
      for (let h = 0; h < this.numKvHeads; h++) {
        slots.forEach((j, i) => dst.set(src.subarray((h * this.slots + j) * hd, (h * this.slots + j + 1) * hd), (h * length + i) * hd));
      }
      return dst;
    };
    copy.layers = this.layers.map((l) => ({ key: take(l.key), value: take(l.value) }));
    copy.appendSlots(length);
    return copy;
  }

  /** Bytes held (holes included). */
  get bytes(): number {
    return this.slots * this.numLayers * 2 * this.numKvHeads * this.headDim * (this.type === 'float16' ? 2 : 4);
  }

  buffers(): ArrayBufferLike[] {
    const arrays = this.resident ? this.resident.batch.present : this.layers;
    return arrays.flatMap((l) => [l.key.buffer, l.value.buffer]).filter((b) => b.byteLength > 0);
  }

  /** Drops positions from `length` on (speculative rollback): their slots become holes. */
  rollback(length: number): void {
    if (length < 0 || length > this.length) throw new Error(`rollback to ${length} outside [0, ${this.length}]`);
    let drop = this.length - length;
    for (let j = this.slots - 1; drop > 0; j--) {
      if (this.valid[j]) {
        this.valid[j] = 0;
        drop--;
      }
    }
    this.length = length;
  }

  /** Frees the arrays (a finished or cancelled sequence). */
  clear(): void {
    this.length = this.slots = 0;
    this.resident = null;
    this.adopted = null;
    this.layers = this.empty();
  }

  /** The batch this cache resides in, if any, and its row there. */
  get residence(): { batch: KvBatch; row: number } | null {
    return this.resident;
  }

  /** Before a pass: squeezes the holes out if they are too many. Returns the number of past slots the pass reads. */
  reserve(): number {
    const holes = this.slots - this.length;
    if (holes > 0 && (!this.allowHoles || holes > Math.max(8, this.length >> 2))) {
      this.materialize();
      this.squeeze();
    }
    return this.slots;
  }

  /** Validity of past slot j (1: attend, 0: hole). */
  isValid(j: number): number {
    return this.valid[j];
  }

  /** The past fed to a pass: layer i's arrays, [kvHeads, slots, headDim]. */
  past(i: number): { key: KvArray; value: KvArray } {
    this.materialize();
    return this.layers[i];
  }

  /** After a batch-of-one pass: its `present` arrays ([1, kvHeads, slots + count, headDim]) become the cache.
   * `handle`: the runtime's own objects for them (handed back by `adoptedHandle` while they are the cache). */
  adopt(present: { key: KvArray; value: KvArray }[], count: number, handle: unknown = null): void {
    this.resident = null;
    this.layers = present;
    this.adopted = handle;
    this.appendSlots(count);
  }

  /** The handle given to the last adopt, while its arrays are still the cache's (not squeezed or replaced since). */
  get adoptedHandle(): unknown {
    return this.adopted;
  }

  /**
   * After a batched pass: the cache now lives in row `row` of `batch`, at [start, batch.total): its past slots, then
   * the pass's `width` new slots, of which the first `count` are this sequence's tokens (the rest, right padding of
   * a shorter row, become holes).
   */
  residentIn(batch: KvBatch, row: number, start: number, width: number, count: number): void {
    this.resident = { batch, row, start };
    this.adopted = null;
    this.appendSlots(width);
    this.valid.fill(0, this.slots - width + count, this.slots);
    this.length -= width - count;
  }

  /** Copies a resident cache's slots out of its batch into arrays of its own. */
  private materialize(): void {
    if (!this.resident) return;
    const { batch, row, start } = this.resident;
    const n = this.slots;
    const hd = this.headDim;
    const take = (src: KvArray): KvArray => {
      const dst = allocKv(this.type, this.numKvHeads * n * hd);
      for (let h = 0; h < this.numKvHeads; h++) {
        const from = ((row * this.numKvHeads + h) * batch.total + start) * hd;
        dst.set(src.subarray(from, from + n * hd), h * n * hd);
      }
      return dst;
    };
    this.layers = batch.present.map((p) => ({ key: take(p.key), value: take(p.value) }));
    this.resident = null;
  }

  private empty(): { key: KvArray; value: KvArray }[] {
    return Array.from({ length: this.numLayers }, () => ({ key: allocKv(this.type, 0), value: allocKv(this.type, 0) }));
  }

  private appendSlots(count: number): void {
    if (this.slots + count > this.valid.length) {
      const grown = new Uint8Array(2 ** Math.ceil(Math.log2(this.slots + count)));
      grown.set(this.valid.subarray(0, this.slots));
      this.valid = grown;
    }
    this.valid.fill(1, this.slots, this.slots + count);
    this.slots += count;
    this.length += count;
  }

  /** Moves the valid slots to the front of fresh arrays, so that slots == length. */
  private squeeze(): void {
    const hd = this.headDim;
    const runs: [number, number][] = [];
    for (let j = 0; j < this.slots; j++) {
      if (!this.valid[j]) continue;
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === j) last[1]++;
      else runs.push([j, 1]);
    }
    const cut = (src: KvArray): KvArray => {
      const dst = allocKv(this.type, this.numKvHeads * this.length * hd);
      for (let h = 0; h < this.numKvHeads; h++) {
        let out = h * this.length * hd;
        for (const [j, n] of runs) {
          const from = (h * this.slots + j) * hd;
          dst.set(src.subarray(from, from + n * hd), out);
          out += n * hd;
        }
      }
      return dst;
    };
    this.layers = this.layers.map((l) => ({ key: cut(l.key), value: cut(l.value) }));
    this.adopted = null;
    this.valid.fill(1, 0, this.length);
    this.valid.fill(0, this.length, this.slots);
    this.slots = this.length;
  }
}
