// A sequence's KV cache, as the engine sees it (docs/design.md, "The KV design"). Two implementations, by what the
// graph returns:
// - PresentKvCache (present-kv-cache.ts): for graphs with Optimum's I/O, whose passes return every layer's
//   `present` = past + new;
// - AppendKvCache (append-kv-cache.ts): for graphs the runtime derives to return only the new positions
//   (graphs/append-kv.ts), with the cache in buffers of its own.
// The speculative engine sees only this interface: a length, rollback to a shorter length, and the bytes it holds.

/** What the engine needs of a sequence's cache; the decoder that made it feeds it. */
export interface KvCache {
  /** Valid positions (what the sequence sees). */
  readonly length: number;
  /** Bytes of its valid positions and holes (what it would take alone). */
  readonly bytes: number;
  /** The memory its slots live in: its own buffers, or those of a batch it shares with other caches (heldBytes counts
   * each once). */
  buffers(): ArrayBufferLike[];
  /** Drops positions from `length` on (speculative rollback). */
  rollback(length: number): void;
  /** Frees the cache (a finished or cancelled sequence). */
  clear(): void;
  /** A new cache holding a copy of the first `length` positions, in memory of its own (prefix caching). */
  fork(length: number): KvCache;
}

export type KvArray = Float32Array | Uint16Array;
export type KvType = 'float32' | 'float16';

export function allocKv(type: KvType, n: number): KvArray {
  return type === 'float16' ? new Uint16Array(n) : new Float32Array(n);
}

/** Bytes of memory that `caches` and `extra` buffers keep alive, each buffer counted once. */
export function heldBytes(caches: Iterable<KvCache>, extra: ArrayBufferLike[] = []): number {
  const seen = new Set<ArrayBufferLike>();
  let total = 0;
  const add = (b: ArrayBufferLike) => {
    if (seen.has(b)) return;
    seen.add(b);
    total += b.byteLength;
  };
  for (const c of caches) for (const b of c.buffers()) add(b);
  for (const b of extra) add(b);
  return total;
}
