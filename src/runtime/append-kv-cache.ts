// One sequence's KV cache in buffers the runtime owns, for graphs that return only the new positions' keys and values
// (graphs/append-kv.ts). A pass feeds the buffers as the past, whole: [rows, kvHeads, capacity, headDim] per layer and
// part, where slots past a row's length are masked by the attention bias; after the pass the new positions are written
// into the slots after the length.
//
// Rollback is free: every rollback drops the newest positions, so it only lowers the length, and the next pass
// overwrites those slots. A sequence's buffers are its *home*: its own (one row) or a batch's, where it is one row
// of several. While a batch runs with the same rows in the same order it keeps its home, and nothing is copied
// between passes; a cache moves (one copy of its slots) only when it runs in another company.
import type { KvArray, KvCache, KvType } from './kv-cache.ts';
import { KvBufferPool } from './kv-buffer-pool.ts';

/** Free slots kept after the needed ones when a home is made, rounded up to a multiple of 8, so that a growing
 * sequence moves only every so often: at least MIN_SPARE_SLOTS, and a fraction of the needed ones that grows with the
 * home. Every masked slot is still read and copied by each Attention node (it forms past + new inside), so for a small
 * home a few spare slots are best; but a move of a large one (a batch of a real model's caches: tens or hundreds of
 * MB allocated, copied, and new shapes for ONNX Runtime) costs several steps, and its homes grow geometrically. */
const MIN_SPARE_SLOTS = 8;
const SLOT_ALIGN = 8;
const LARGE_HOME_BYTES = 4 * 1024 * 1024;
/** A large home's buffer holds this many times the home, so that the batch grows in place a few times (1.25x each)
 * before it needs new memory; pages past the home stay untouched, and so not resident, until it grows into them. */
const GROWTH_ROOM = 2;

/** Slots of a home made for `needed` positions of `bytesPerSlot` each (every row, layer and part): needed plus the
 * spare, aligned. */
export function homeCapacity(needed: number, bytesPerSlot = 0): number {
  const fraction = needed * bytesPerSlot > LARGE_HOME_BYTES ? needed >> 2 : needed >> 4;
  return Math.ceil((needed + Math.max(MIN_SPARE_SLOTS, fraction)) / SLOT_ALIGN) * SLOT_ALIGN;
}

/** Buffers shared by the rows of one pass: per layer and part (block 2l keys, 2l + 1 values) an array
 * [rows, kvHeads, capacity, headDim], the blocks consecutive in `all` (a packed past, graphs/append-kv.ts).
 * `feeds`, `packedFeed`: the decoder's tensors over them, made once per home. */
export interface KvHome {
  readonly all: KvArray;
  readonly blocks: KvArray[];
  readonly rows: number;
  readonly capacity: number;
  feeds: unknown;
  packedFeed: unknown;
  /** Caches living in it; at 0 its memory goes back to the pool. */
  users: number;
}

export class AppendKvCache implements KvCache {
  length = 0;
  private home: KvHome | null = null;
  private row = 0;

  /** `pool`: where homes' memory comes from and goes back to, shared by the caches of one decoder. */
  constructor(readonly numLayers: number, readonly numKvHeads: number, readonly headDim: number, readonly type: KvType,
    private readonly pool: KvBufferPool = new KvBufferPool(type)) {}

  get bytes(): number {
    return this.length * this.numLayers * 2 * this.numKvHeads * this.headDim * (this.type === 'float16' ? 2 : 4);
  }

  /** Its home's buffer: its own, or a batch's shared with the other rows. */
  buffers(): ArrayBufferLike[] {
    return this.home ? [this.home.all.buffer] : [];
  }

  rollback(length: number): void {
    if (length < 0 || length > this.length) throw new Error(`rollback to ${length} outside [0, ${this.length}]`);
    this.length = length;
  }

  clear(): void {
    this.length = 0;
    this.leave();
  }

  fork(length: number): AppendKvCache {
    if (length < 0 || length > this.length) throw new Error(`fork of ${length} positions outside [0, ${this.length}]`);
    const copy = new AppendKvCache(this.numLayers, this.numKvHeads, this.headDim, this.type, this.pool);
    if (length === 0 || !this.home) return copy;
    const { numLayers, numKvHeads: heads, headDim: hd } = this;
    const capacity = homeCapacity(length, this.slotBytes());
    const block = heads * capacity * hd;
    const all = this.pool.take(2 * numLayers * block);
    const blocks = Array.from({ length: 2 * numLayers }, (_, p) => all.subarray(p * block, (p + 1) * block));
    copy.home = { all, blocks, rows: 1, capacity, feeds: null, packedFeed: null, users: 1 };
    this.copyRowInto(copy.home, 0, length);
    copy.length = length;
    return copy;
  }

  /** Bytes of one position of one row (every layer and part). */
  private slotBytes(): number {
    return 2 * this.numLayers * this.numKvHeads * this.headDim * (this.type === 'float16' ? 2 : 4);
  }

  /** Leaves its home; the last to leave gives its memory back. */
  private leave(): void {
    if (this.home && --this.home.users === 0) this.pool.give(this.home.all);
    this.home = null;
  }

  /** The home and row a pass feeds. */
  get place(): { home: KvHome; row: number } | null {
    return this.home ? { home: this.home, row: this.row } : null;
  }

  /**
   * Before a pass of `caches` (in row order) that adds up to `added` positions to each: keeps their shared home if
   * they are its rows in order and it has room, else lays them out again inside its buffer where that can be done
   * (relayoutInPlace), else moves them all into a new one. Returns the home.
   */
  static homeFor(caches: AppendKvCache[], added: number): KvHome {
    const first = caches[0];
    const needed = Math.max(...caches.map((c) => c.length + added));
    const home = first.home;
    const { numLayers, numKvHeads: heads, headDim: hd } = first;
    const bytesPerSlot = caches.length * first.slotBytes();
    const large = needed * bytesPerSlot > LARGE_HOME_BYTES;
    const elements = (capacity: number) => 2 * numLayers * caches.length * heads * capacity * hd;
    const same = home !== null && home.rows === caches.length && caches.every((c, b) => c.home === home && c.row === b);
    if (same && home.capacity >= needed) {
      // The next home's memory is faulted in over the passes left before the move (kv-buffer-pool.ts).
      if (large) {
        const next = elements(homeCapacity(home.capacity + added, bytesPerSlot));
        first.pool.readyFor(home.all, home.all.length, next, GROWTH_ROOM * next, Math.floor((home.capacity - needed) / Math.max(1, added)) + 1);
      }
      return home;
    }
    // The same rows grown past their capacity take the home their passes made ready (above); where their buffer has
    // the room for it, they move within it. So do the rows of a batch that some rows left, or that newcomers join.
    const capacity = same ? homeCapacity(home.capacity + added, bytesPerSlot) : homeCapacity(needed, bytesPerSlot);
    // In place only where the buffer would serve that home if it were free (the pool's rule: not far larger).
    const room = large ? GROWTH_ROOM * elements(capacity) : 0;
    const inPlace = home && first.pool.serves(home.all, elements(capacity), room) ? AppendKvCache.relayoutInPlace(caches, home, capacity) : null;
    if (inPlace) return inPlace;
    const block = caches.length * heads * capacity * hd;
    const all = first.pool.take(2 * numLayers * block, room);
    const blocks = Array.from({ length: 2 * numLayers }, (_, p) => all.subarray(p * block, (p + 1) * block));
    const fresh: KvHome = { all, blocks, rows: caches.length, capacity, feeds: null, packedFeed: null, users: caches.length };
    caches.forEach((c, b) => c.copyRowInto(fresh, b));
    // Only once every row is copied: a row's old home may be another's too.
    caches.forEach((c, b) => {
      c.leave();
      c.home = fresh;
      c.row = b;
    });
    return fresh;
  }

  /** Copies its first `length` positions into row `b` of `to` (another buffer than its home's). */
  private copyRowInto(to: KvHome, b: number, length = this.length): void {
    const from = this.home;
    if (!from || length === 0) return;
    const { numKvHeads: heads, headDim: hd } = this;
    for (let p = 0; p < to.blocks.length; p++) {
      for (let h = 0; h < heads; h++) {
        const src = ((this.row * heads + h) * from.capacity) * hd;
        to.blocks[p].set(from.blocks[p].subarray(src, src + length * hd), ((b * heads + h) * to.capacity) * hd);
      }
    }
  }

  /**
   * `caches` as the rows of a home of `capacity` slots over `home`'s buffer, without new memory: where the first of
   * them are all of `home`'s users, in its row order (the same rows grown; rows left; or newcomers after them), and
   * every segment of their positions moves the same way (down: moved first to last; up: last first, so that none is
   * overwritten before it moves). The newcomers' positions are then copied in from their own homes. Null where that
   * does not hold (the caller moves them all into new memory).
   */
  private static relayoutInPlace(caches: AppendKvCache[], home: KvHome, capacity: number): KvHome | null {
    let kept = 0;
    while (kept < caches.length && caches[kept].home === home && (kept === 0 || caches[kept].row > caches[kept - 1].row)) kept++;
    if (kept === 0 || home.users !== kept || caches.slice(kept).some((c) => c.home === home)) return null;
    const { numLayers, numKvHeads: heads, headDim: hd } = caches[0];
    const block = caches.length * heads * capacity * hd;
    const oldBlock = home.rows * heads * home.capacity * hd;
    const segments: { from: number; to: number; length: number }[] = [];
    for (let p = 0; p < 2 * numLayers; p++) {
      for (let b = 0; b < kept; b++) {
        for (let h = 0; h < heads; h++) {
          const length = caches[b].length * hd;
          if (length > 0) segments.push({ from: p * oldBlock + ((caches[b].row * heads + h) * home.capacity) * hd, to: p * block + ((b * heads + h) * capacity) * hd, length });
        }
      }
    }
    const down = segments.every((g) => g.to <= g.from);
    if (!down && !segments.every((g) => g.to >= g.from)) return null;
    // The whole buffer: the old layout may reach past the new one, and copyWithin stays inside its view. (Moving up into
    // room that readyFor has not faulted in yet pays for those pages here.)
    const whole = home.all instanceof Uint16Array ? new Uint16Array(home.all.buffer) : new Float32Array(home.all.buffer);
    if (down) for (const g of segments) whole.copyWithin(g.to, g.from, g.from + g.length);
    else for (let i = segments.length - 1; i >= 0; i--) whole.copyWithin(segments[i].to, segments[i].from, segments[i].from + segments[i].length);
    const all = whole.subarray(0, 2 * numLayers * block);
    const blocks = Array.from({ length: 2 * numLayers }, (_, p) => all.subarray(p * block, (p + 1) * block));
    const moved: KvHome = { all, blocks, rows: caches.length, capacity, feeds: null, packedFeed: null, users: caches.length };
    caches.forEach((c, b) => {
      if (b >= kept) {
        c.copyRowInto(moved, b); // a newcomer, from its own home
        c.leave();
      }
      c.home = moved;
      c.row = b;
    });
    return moved;
  }

  /**
   * After a pass: appends `count` positions from `kvNew` ([2L * B, S, kvHeads * headDim], graphs/append-kv.ts), row
   * `b` of the pass, positions [0, count).
   */
  append(kvNew: KvArray, B: number, S: number, b: number, count: number): void {
    const home = this.home;
    if (!home || this.length + count > home.capacity) throw new Error('append: no room (homeFor must run before the pass)');
    const { numKvHeads: heads, headDim: hd } = this;
    const width = heads * hd;
    for (let p = 0; p < home.blocks.length; p++) {
      const dst = home.blocks[p];
      for (let i = 0; i < count; i++) {
        const src = ((p * B + b) * S + i) * width;
        for (let h = 0; h < heads; h++) {
          const to = ((this.row * heads + h) * home.capacity + this.length + i) * hd;
          const from = src + h * hd;
          for (let x = 0; x < hd; x++) dst[to + x] = kvNew[from + x];
        }
      }
    }
    this.length += count;
  }
}
