// Scratch memory for a pass's integer feeds (ids, positions, mask) in the graph's id type and for its attention bias,
// reused from pass to pass: ORT reads feeds only during session.run, and a decoder runs one pass at a time.
import ort from 'onnxruntime-node';

const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** The additive attention bias of a derived graph (graphs/bias-input.ts): its values for an allowed and a masked key,
 * float32 values or float16 bits. */
export interface BiasValues {
  type: 'float32' | 'float16';
  allowed: number;
  masked: number;
}

export class FeedScratch {
  private scratch: BigInt64Array | Int32Array = new Int32Array(0) as Int32Array;
  /** 32-bit words of the scratch: element i's value is written at [i * stride + low] (for int64, its low word; high
   * words stay 0, values are non-negative). */
  private words: Int32Array = new Int32Array(0);
  private biasBuffer: Float32Array | Uint16Array = new Float32Array(0);

  constructor(readonly idsType: 'int64' | 'int32', private readonly biasType: BiasValues['type'] | null) {}

  /** `total` zeroed integer elements, as 32-bit words (see `words`). */
  ints(total: number): { words: Int32Array; stride: number; low: number } {
    const int64 = this.idsType === 'int64';
    if (this.scratch.length < total) {
      const capacity = 2 ** Math.ceil(Math.log2(Math.max(total, 1024)));
      this.scratch = int64 ? new BigInt64Array(capacity) : new Int32Array(capacity);
      this.words = int64 ? new Int32Array(this.scratch.buffer) : (this.scratch as Int32Array);
    }
    const stride = int64 ? 2 : 1;
    this.words.fill(0, 0, total * stride);
    return { words: this.words, stride, low: int64 && !LITTLE_ENDIAN ? 1 : 0 };
  }

  /** A tensor over integer elements [offset, offset + product(dims)). */
  intTensor(offset: number, dims: number[]): ort.Tensor {
    const n = dims.reduce((a, b) => a * b, 1);
    return new ort.Tensor(this.idsType, this.scratch.subarray(offset, offset + n), dims);
  }

  /** Room for `n` bias values (float32 values or float16 bits). */
  bias(n: number): Float32Array | Uint16Array {
    if (this.biasBuffer.length < n) {
      const capacity = 2 ** Math.ceil(Math.log2(Math.max(n, 1024)));
      this.biasBuffer = this.biasType === 'float16' ? new Uint16Array(capacity) : new Float32Array(capacity);
    }
    return this.biasBuffer;
  }
}
