// How a pass feeds a graph's cache and what it does with the KV the run returns: one interface, two kinds of cache
// (kv-cache.ts): Optimum's present outputs (present-kv-feeds.ts) and the runtime's own buffers with appended KV
// outputs (append-kv-feeds.ts). The decoder picks one when it opens a model and runs every pass through it.
import type ort from 'onnxruntime-node';
import { halfToFloatArray } from '../onnx/float16.ts';
import type { ModelFolder } from './model-folder.ts';
import type { KvCache, KvType } from './kv-cache.ts';
import type { BiasValues, FeedScratch } from './feed-scratch.ts';

export interface ForwardRow {
  cache: KvCache;
  /** New tokens to append after the cache's `length` positions. */
  tokens: number[];
  /** Only the logits after the last of them are wanted (a prefill): the pass returns that one row. */
  lastOnly?: boolean;
}

/** What the feeds know of the graph they feed. */
export interface GraphIo {
  folder: ModelFolder;
  kvType: KvType;
  pastNames: { key: string; value: string }[];
  presentNames: { key: string; value: string }[];
  hasMaskInput: boolean;
  hasPositionIds: boolean;
  /** The derived graph's bias values, where the graph takes an attention_bias input (graphs/bias-input.ts). */
  bias: BiasValues | null;
  scratch: FeedScratch;
}

/** One pass's feeds, and what commit needs to know of them: S new positions per row (right-padded), P past slots. */
export interface Pass {
  feeds: Record<string, ort.Tensor>;
  S: number;
  P: number;
  /** Slots of the pass's present: P + S, plus a draft chain's own drafts. */
  T: number;
  /** Past slots each row reads (present kind). */
  slots: number[];
}

export interface KvFeeds {
  newCache(): KvCache;
  /** Feeds for one run over `rows`; `extra`: the cache will also hold that many positions more than the rows' tokens
   * (a draft chain's own drafts). */
  prepare(rows: ForwardRow[], extra: number): Pass;
  /** After the run: the caches take the new positions from `out`, whose KV names carry `prefix` (a fused step's
   * draft part: "draft."). */
  commit(rows: ForwardRow[], out: ort.InferenceSession.OnnxValueMapType, pass: Pass, extra: number, prefix: string): void;
  /** KV memory the feeds keep between passes (past buffers reused by batched passes). */
  buffers(): ArrayBufferLike[];
}

/** Each row must fit the context with its own cache and new tokens (`extra`: a draft chain's own drafts); rows
 * shorter than the pass's S are padded with token 0 at position 0 (the feeds' scratch starts zeroed), masked out,
 * so a batch may hold a row at the limit beside a wide one. */
export function checkPositions(io: GraphIo, rows: ForwardRow[], extra: number): void {
  rows.forEach((r, b) => {
    if (r.tokens.length === 0) throw new Error(`forward: row ${b} has no new token`);
    const positions = r.cache.length + r.tokens.length + extra;
    if (positions > io.folder.maxPositions) throw new Error(`forward: row ${b}: ${positions} positions exceed the model's ${io.folder.maxPositions}`);
  });
}

/** Logits of every new position of every row of a pass, [row][position] (of a `lastOnly` row, its last position's
 * alone): views of the output, or where it is float16, each row widened on its own. */
export function logitsOf(logitsTensor: ort.Tensor, rows: ForwardRow[], S: number): Float32Array[][] {
  const V = Number(logitsTensor.dims[2]);
  // Half-precision logits are converted row by row, only the rows wanted: a prefill of a few hundred tokens over a
  // vocabulary of 100k or more would otherwise convert tens of millions of values to use one row per sequence.
  const half = logitsTensor.type === 'float16';
  const data = logitsTensor.data as Float32Array | Uint16Array;
  const row = (b: number, i: number) => {
    const view = data.subarray((b * S + i) * V, (b * S + i + 1) * V);
    return half ? halfToFloatArray(view as Uint16Array) : (view as Float32Array);
  };
  return rows.map((r, b) => (r.lastOnly ? [row(b, r.tokens.length - 1)] : r.tokens.map((_, i) => row(b, i))));
}
