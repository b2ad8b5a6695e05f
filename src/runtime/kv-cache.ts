// One sequence's KV cache: per layer, keys and values as dense [kvHeads, slots, headDim] arrays in the model's KV
// dtype, ready to be fed as `past_key_values` without a copy.
//
// Slots are not positions. Speculative decoding appends k+1 positions and rolls most of them back almost every step;
// a rollback only marks the tail slots invalid (O(1) in the cache size), and the next pass feeds them with
// attention_mask 0 (positions come from position_ids, so a hole changes nothing the model computes). The holes are
// squeezed out only when they make up a large share of the slots, so the copy is amortised over many steps.
//
// Each layer has two buffers of the same capacity: a pass reads `past` from the current one and ONNX Runtime writes
// `present` (past slots + new ones) straight into the other, preallocated; then they swap. A batch of one therefore
// runs without copying or allocating the cache at all.

export type KvArray = Float32Array | Uint16Array;
export type KvType = 'float32' | 'float16';

export function allocKv(type: KvType, n: number): KvArray {
  return type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
}

const INITIAL_SLOTS = 64;

export interface KvCacheOptions {
  /** Whether holes may be fed with attention_mask 0. Graphs that derive positions from mask sums (onnxruntime-genai's
   * GroupQueryAttention) need the valid slots contiguous: then every rollback is squeezed out before the next pass. */
  allowHoles?: boolean;
}

export class KvCache {
  /** Valid positions (what the sequence sees). */
  length = 0;
  /** Slots written in the arrays (valid ones and holes). */
  slots = 0;
  private capacity = 0;
  private valid = new Uint8Array(0);
  private current: { key: KvArray; value: KvArray }[] = [];
  private spare: { key: KvArray; value: KvArray }[] = [];
  private readonly allowHoles: boolean;

  constructor(readonly numLayers: number, readonly numKvHeads: number, readonly headDim: number, readonly type: KvType,
    o: KvCacheOptions = {}) {
    this.allowHoles = o.allowHoles ?? true;
  }

  /** Bytes held by both buffers of every layer. */
  get bytes(): number {
    return this.capacity * this.numLayers * 4 * this.numKvHeads * this.headDim * (this.type === 'float16' ? 2 : 4);
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
    this.length = this.slots = this.capacity = 0;
    this.valid = new Uint8Array(0);
    this.current = [];
    this.spare = [];
  }

  /**
   * Prepares a pass that appends `count` slots: squeezes holes out if they are too many, grows the buffers if needed.
   * Returns the number of past slots the pass will read.
   */
  reserve(count: number): number {
    const holes = this.slots - this.length;
    if (holes > 0 && (!this.allowHoles || holes > Math.max(8, this.length >> 2))) this.squeeze(this.length + count);
    if (this.slots + count > this.capacity) this.grow(this.slots + count);
    return this.slots;
  }

  /** Validity of past slot j (1: attend, 0: hole). */
  isValid(j: number): number {
    return this.valid[j];
  }

  /** The past fed to a pass: layer i's arrays, exactly `slots` slots each. */
  past(i: number): { key: KvArray; value: KvArray } {
    const n = this.numKvHeads * this.slots * this.headDim;
    return { key: this.current[i].key.subarray(0, n), value: this.current[i].value.subarray(0, n) };
  }

  /** Where ONNX Runtime writes `present` for a batch of one: layer i's spare arrays, `slots + count` slots each. */
  presentTarget(i: number, count: number): { key: KvArray; value: KvArray } {
    const n = this.numKvHeads * (this.slots + count) * this.headDim;
    return { key: this.spare[i].key.subarray(0, n), value: this.spare[i].value.subarray(0, n) };
  }

  /** After a batch-of-one pass wrote `present` into presentTarget: the spare buffers become the cache. */
  commitInPlace(count: number): void {
    [this.current, this.spare] = [this.spare, this.current];
    this.appendSlots(count);
  }

  /**
   * Copies slots [start, start + slots + count) of batch row `row` of `present` tensors ([batch, kvHeads, total,
   * headDim] per layer) into the cache: its own past slots, then `count` new ones.
   */
  commitFromBatch(present: { key: KvArray; value: KvArray }[], row: number, total: number, start: number, count: number): void {
    const n = this.slots + count;
    const hd = this.headDim;
    for (let l = 0; l < this.numLayers; l++) {
      for (const part of ['key', 'value'] as const) {
        const src = present[l][part];
        const dst = this.spare[l][part];
        for (let h = 0; h < this.numKvHeads; h++) {
          const from = ((row * this.numKvHeads + h) * total + start) * hd;
          dst.set(src.subarray(from, from + n * hd), h * n * hd);
        }
      }
    }
    [this.current, this.spare] = [this.spare, this.current];
    this.appendSlots(count);
  }

  private appendSlots(count: number): void {
    this.valid.fill(1, this.slots, this.slots + count);
    this.slots += count;
    this.length += count;
  }

  /** Moves the valid slots to the front (through the spare buffers), so that slots == length. */
  private squeeze(needed: number): void {
    if (needed > this.capacity) this.grow(needed);
    const hd = this.headDim;
    const runs: [number, number][] = [];
    for (let j = 0; j < this.slots; j++) {
      if (!this.valid[j]) continue;
      const last = runs[runs.length - 1];
      if (last && last[0] + last[1] === j) last[1]++;
      else runs.push([j, 1]);
    }
    for (let l = 0; l < this.numLayers; l++) {
      for (const part of ['key', 'value'] as const) {
        const src = this.current[l][part];
        const dst = this.spare[l][part];
        for (let h = 0; h < this.numKvHeads; h++) {
          let out = h * this.length * hd;
          for (const [j, n] of runs) {
            const from = (h * this.slots + j) * hd;
            dst.set(src.subarray(from, from + n * hd), out);
            out += n * hd;
          }
        }
      }
    }
    [this.current, this.spare] = [this.spare, this.current];
    this.valid.fill(1, 0, this.length);
    this.valid.fill(0, this.length, this.slots);
    this.slots = this.length;
  }

  private grow(needed: number): void {
    const capacity = Math.max(INITIAL_SLOTS, 2 ** Math.ceil(Math.log2(needed)));
    const size = this.numKvHeads * capacity * this.headDim;
    const used = this.numKvHeads * this.slots * this.headDim;
    const fresh = () => ({ key: allocKv(this.type, size), value: allocKv(this.type, size) });
    this.current = Array.from({ length: this.numLayers }, (_, l) => {
      const next = fresh();
      if (this.current[l]) {
        next.key.set(this.current[l].key.subarray(0, used));
        next.value.set(this.current[l].value.subarray(0, used));
      }
      return next;
    });
    this.spare = Array.from({ length: this.numLayers }, fresh);
    const valid = new Uint8Array(capacity);
    valid.set(this.valid.subarray(0, this.slots));
    this.valid = valid;
    this.capacity = capacity;
  }
}
