// The memory of KV homes that no cache uses any more, kept for the next home that fits (append-kv-cache.ts). Fresh
// memory costs a page fault per page the first time it is written (several milliseconds per MB on a shared host), and
// a batch's home of a real model, tens to hundreds of MB, is made again each time the batch grows or changes company:
// reused memory makes those moves a copy only. Bounded: a few buffers, dropped smallest first.
import { allocKv, type KvArray, type KvType } from './kv-cache.ts';

const MAX_BUFFERS = 4;
// A freed buffer serves a home of at least this share of its size (else a small home would pin a large buffer).
const MIN_USE = 0.5;

export class KvBufferPool {
  private free: KvArray[] = [];

  constructor(private readonly type: KvType) {}

  /** `n` elements: a freed buffer's (old values in it, all finite KV) or fresh zeroed memory. */
  take(n: number): KvArray {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].length;
      if (len >= n && len * MIN_USE <= n && (best < 0 || len < this.free[best].length)) best = i;
    }
    if (best < 0) return allocKv(this.type, n);
    const [buffer] = this.free.splice(best, 1);
    return buffer.subarray(0, n);
  }

  /** Returns a home's memory (any view over it: the whole buffer comes back). */
  give(array: KvArray): void {
    const whole = this.type === 'float16' ? new Uint16Array(array.buffer) : new Float32Array(array.buffer);
    if (this.free.some((b) => b.buffer === whole.buffer)) return;
    this.free.push(whole);
    if (this.free.length > MAX_BUFFERS) {
      this.free.sort((a, b) => b.length - a.length);
      this.free.length = MAX_BUFFERS;
    }
  }

  /** The memory it holds (counted as KV memory held). */
  buffers(): ArrayBufferLike[] {
    return this.free.map((b) => b.buffer);
  }
}
