// The memory of KV homes (append-kv-cache.ts). Fresh memory costs a page fault per page the first time it is written
// (several milliseconds per MB on a shared host), and a batch's home of a real model is tens to hundreds of MB, so
// the pool avoids fresh memory where it can, and spreads the faults it cannot avoid:
//  - a freed home's memory is kept for the next home that fits (bounded: a few buffers, dropped smallest first);
//  - a large home's buffer is made with room past the home (`take`'s `room`; the pages of that room are not touched,
//    so not resident, until used), so that the batch grows inside it (AppendKvCache.homeFor moves its rows in place);
//  - the memory the next home will use, that room or a buffer made ahead where the room runs out, is faulted in a
//    slice per pass over the passes left before the move (`readyFor`), rather than all in the step that moves.
import { allocKv, type KvArray, type KvType } from './kv-cache.ts';

const MAX_BUFFERS = 4;
// A freed buffer serves a home of at least this share of its size (else a small home would pin a large buffer).
const MIN_USE = 0.5;
// Bytes per page.
const PAGE_BYTES = 4096;

/** A buffer of `len` elements serves a home of `n` (made with `room`): it holds it, and the home is not far smaller. */
function fits(len: number, n: number, room: number): boolean {
  return len >= n && len * MIN_USE <= Math.max(n, room);
}

export class KvBufferPool {
  private free: KvArray[] = [];
  /** A buffer made ahead of a move, its first `touched` elements faulted in. */
  private warming: { buffer: KvArray; touched: number } | null = null;
  /** Per buffer, how far from its start its pages are known to be faulted in (elements), while in use and free. */
  private readonly touched = new WeakMap<ArrayBufferLike, number>();

  constructor(private readonly type: KvType) {}

  private whole(array: KvArray): KvArray {
    return this.type === 'float16' ? new Uint16Array(array.buffer) : new Float32Array(array.buffer);
  }

  /** `n` elements at the start of a buffer of at least `room` elements: a freed buffer's (old values in it, all finite
   * KV), the one made ahead, or fresh zeroed memory. */
  take(n: number, room = n): KvArray {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const len = this.free[i].length;
      if (fits(len, n, room) && (best < 0 || len < this.free[best].length)) best = i;
    }
    const w = this.warming;
    if (best < 0 && w && fits(w.buffer.length, n, room)) {
      this.warming = null;
      this.touched.set(w.buffer.buffer, w.touched);
      return w.buffer.subarray(0, n);
    }
    if (best < 0) return allocKv(this.type, Math.max(n, room)).subarray(0, n);
    const [buffer] = this.free.splice(best, 1);
    return buffer.subarray(0, n);
  }

  /** Returns a home's memory (any view over it: the whole buffer comes back). */
  give(array: KvArray): void {
    const whole = this.whole(array);
    if (this.free.some((b) => b.buffer === whole.buffer)) return;
    // The home it served was written throughout; its room only as far as it was faulted ahead.
    this.touched.set(whole.buffer, Math.max(this.touched.get(whole.buffer) ?? 0, array.length));
    this.free.push(whole);
    if (this.free.length > MAX_BUFFERS) {
      this.free.sort((a, b) => b.length - a.length);
      this.free.length = MAX_BUFFERS;
    }
  }

  /** Whether `current`'s buffer would serve a home of `n` elements made with `room`, were it free (as `take` chooses). */
  serves(current: KvArray, n: number, room: number): boolean {
    return fits(this.room(current), n, room);
  }

  /** Elements `current`'s whole buffer holds. */
  room(current: KvArray): number {
    return current.buffer.byteLength / current.BYTES_PER_ELEMENT;
  }

  /**
   * A pass of the home over `current` (which has its first `used` elements in use) that will next need `next`
   * elements, within about `passes` passes: faults in this pass's share of the memory that home will take. That is
   * `current`'s own room where it holds `next` elements, else a buffer made ahead (with `room` elements, unless a free
   * one fits).
   */
  readyFor(current: KvArray, used: number, next: number, room: number, passes: number): void {
    if (this.room(current) >= next) {
      const from = Math.max(this.touched.get(current.buffer) ?? 0, used);
      if (from < next) this.touched.set(current.buffer, this.fault(this.whole(current), from, next, passes));
      return;
    }
    if (this.free.some((b) => fits(b.length, next, room))) return;
    if (!this.warming || !fits(this.warming.buffer.length, next, room)) this.warming = { buffer: allocKv(this.type, Math.max(next, room)), touched: 0 };
    this.warming.touched = this.fault(this.warming.buffer, this.warming.touched, next, passes);
  }

  /** Writes one element per page of [from, to) over `passes` passes: this pass's slice. Returns where it stopped. */
  private fault(buffer: KvArray, from: number, to: number, passes: number): number {
    if (from >= to) return from;
    const stride = PAGE_BYTES / buffer.BYTES_PER_ELEMENT;
    const end = Math.min(to, from + Math.ceil((to - from) / Math.max(1, passes)));
    // Its first element, then each page's first up to the end (a page split by two slices gets a write in each).
    for (let i = from; i < end; i = (Math.floor(i / stride) + 1) * stride) buffer[i] = 0;
    return end;
  }

  /** The memory it holds (counted as KV memory held). */
  buffers(): ArrayBufferLike[] {
    return [...this.free, ...(this.warming ? [this.warming.buffer] : [])].map((b) => b.buffer);
  }
}
