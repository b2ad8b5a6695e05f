// The memory of KV homes that no cache uses any more, kept for the next home that fits (append-kv-cache.ts). Fresh
// memory costs a page fault per page the first time it is written (several milliseconds per MB on a shared host), and
// a batch's home of a real model, tens to hundreds of MB, is made again each time the batch grows or changes company:
// reused memory makes those moves a copy only. Bounded: a few buffers, dropped smallest first.
//
// A growing batch's next home is bigger than any it freed, so that memory is fresh: `prepare` makes it ahead of time
// and `step` faults its pages in a slice per pass, so the cost is spread over a few steps rather than paid in the one
// where the batch moves. (On a 100M-parameter model a move into 20-50 MB of fresh memory made that step 80-200 ms
// against the usual 20-40 ms.)
import { allocKv, type KvArray, type KvType } from './kv-cache.ts';

const MAX_BUFFERS = 4;
// A freed buffer serves a home of at least this share of its size (else a small home would pin a large buffer).
const MIN_USE = 0.5;
// Bytes per page, and the passes a prepared buffer is faulted in over.
const PAGE_BYTES = 4096;
const WARM_PASSES = 4;

export class KvBufferPool {
  private free: KvArray[] = [];
  /** A buffer made ahead of a move, its first `touched` elements faulted in. */
  private warming: { buffer: KvArray; touched: number } | null = null;

  constructor(private readonly type: KvType) {}

  /** `n` elements: a freed buffer's (old values in it, all finite KV) or fresh zeroed memory. */
  take(n: number): KvArray {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].length;
      if (len >= n && len * MIN_USE <= n && (best < 0 || len < this.free[best].length)) best = i;
    }
    const w = this.warming;
    if (best < 0 && w && w.buffer.length >= n && w.buffer.length * MIN_USE <= n) {
      this.warming = null;
      return w.buffer.subarray(0, n);
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

  /** Starts making a buffer of `n` elements ready, unless a free or prepared one would serve. */
  prepare(n: number): void {
    const fits = (len: number) => len >= n && len * MIN_USE <= n;
    if ((this.warming && fits(this.warming.buffer.length)) || this.free.some((b) => fits(b.length))) return;
    this.warming = { buffer: allocKv(this.type, n), touched: 0 };
  }

  /** Faults in the next slice of the buffer being prepared (one write per page). */
  step(): void {
    const w = this.warming;
    if (!w || w.touched >= w.buffer.length) return;
    const stride = PAGE_BYTES / w.buffer.BYTES_PER_ELEMENT;
    const end = Math.min(w.buffer.length, w.touched + Math.ceil(w.buffer.length / WARM_PASSES));
    for (let i = w.touched; i < end; i += stride) w.buffer[i] = 0;
    w.touched = end;
  }

  /** The memory it holds (counted as KV memory held). */
  buffers(): ArrayBufferLike[] {
    return [...this.free, ...(this.warming ? [this.warming.buffer] : [])].map((b) => b.buffer);
  }
}
