// One sequence's KV cache: per layer, keys and values as [kvHeads, length, headDim] arrays in the model's KV dtype.
// Rollback is O(1): it only lowers `length`; the stale tail is dropped lazily, the next time the cache is fed to a
// forward pass (speculative decoding rolls back almost every step, so the cost of a rollback must not depend on it).
// Appending adopts ONNX Runtime's `present` output: with a batch of one it becomes the cache without a copy.

export type KvArray = Float32Array | Uint16Array;
export type KvType = 'float32' | 'float16';

export function allocKv(type: KvType, n: number): KvArray {
  return type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
}

export class KvCache {
  /** Valid positions. */
  length = 0;
  /** Positions held in the arrays (>= length after a rollback). */
  private stored = 0;
  private keys: KvArray[];
  private values: KvArray[];

  constructor(readonly numLayers: number, readonly numKvHeads: number, readonly headDim: number, readonly type: KvType) {
    this.keys = Array.from({ length: numLayers }, () => allocKv(type, 0));
    this.values = Array.from({ length: numLayers }, () => allocKv(type, 0));
  }

  /** Bytes held (including a not yet dropped tail). */
  get bytes(): number {
    return this.stored * this.numLayers * 2 * this.numKvHeads * this.headDim * (this.type === 'float16' ? 2 : 4);
  }

  /** Drops positions from `length` on (speculative rollback). */
  rollback(length: number): void {
    if (length < 0 || length > this.length) throw new Error(`rollback to ${length} outside [0, ${this.length}]`);
    this.length = length;
  }

  /** Frees the arrays (a finished or cancelled sequence). */
  clear(): void {
    this.length = this.stored = 0;
    this.keys = this.keys.map(() => allocKv(this.type, 0));
    this.values = this.values.map(() => allocKv(this.type, 0));
  }

  /** Layer arrays with exactly `length` positions, compacting after a rollback. */
  layer(i: number): { key: KvArray; value: KvArray } {
    if (this.stored !== this.length) this.compact();
    return { key: this.keys[i], value: this.values[i] };
  }

  private compact(): void {
    const cut = (a: KvArray) => {
      const out = allocKv(this.type, this.numKvHeads * this.length * this.headDim);
      const rowIn = this.stored * this.headDim;
      const rowOut = this.length * this.headDim;
      for (let h = 0; h < this.numKvHeads; h++) out.set(a.subarray(h * rowIn, h * rowIn + rowOut), h * rowOut);
      return out;
    };
    this.keys = this.keys.map(cut);
    this.values = this.values.map(cut);
    this.stored = this.length;
  }

  /**
   * Replaces the cache with positions [start, start + count) of batch row `row` of `present` tensors
   * ([batch, kvHeads, total, headDim] per layer). Row 0 of a batch of one, taken whole, is adopted without a copy.
   */
  adopt(present: { key: KvArray; value: KvArray }[], batch: number, total: number, row: number, start: number, count: number): void {
    const whole = batch === 1 && start === 0 && count === total;
    const take = (a: KvArray): KvArray => {
      if (whole) return a;
      const out = allocKv(this.type, this.numKvHeads * count * this.headDim);
      for (let h = 0; h < this.numKvHeads; h++) {
        const src = ((row * this.numKvHeads + h) * total + start) * this.headDim;
        out.set(a.subarray(src, src + count * this.headDim), h * count * this.headDim);
      }
      return out;
    };
    this.keys = present.map((p) => take(p.key));
    this.values = present.map((p) => take(p.value));
    this.length = this.stored = count;
  }
}
