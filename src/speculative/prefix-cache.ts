// Automatic prefix caching: the KV of finished sequences (prompt and output), kept under a byte budget, least recently
// used out first. A new request starts from the longest prefix of its prompt an entry holds, as a copy (KvCache.fork),
// and prefills only the rest; a system prompt, a chat history (whose last reply is an entry's output) or `n` > 1 in
// a later request skip their recomputation. The draft model's cache is kept beside the target's.
import type { KvCache } from '../runtime/kv-cache.ts';

export interface PrefixEntry {
  /** The tokens the target cache holds, in order. */
  tokens: number[];
  target: KvCache;
  /** The draft model's cache and the tokens it holds. */
  draft?: { cache: KvCache; tokens: number[] };
}

/** A prefix shorter than this is not worth a copy. */
const MIN_TOKENS = 16;

export class PrefixCache {
  /** Least recently used first. */
  private entries: PrefixEntry[] = [];

  constructor(private readonly budgetBytes: number) {}

  get bytes(): number {
    return this.entries.reduce((a, e) => a + entryBytes(e), 0);
  }

  get buffers(): ArrayBufferLike[] {
    return this.entries.flatMap((e) => [...e.target.buffers(), ...(e.draft?.cache.buffers() ?? [])]);
  }

  /** The entry holding the longest prefix of `prompt` (at most all but its last token, whose logits a pass must
   * compute), and that prefix's length; null under MIN_TOKENS. */
  lookup(prompt: readonly number[]): { entry: PrefixEntry; length: number } | null {
    let best: { entry: PrefixEntry; length: number } | null = null;
    for (const entry of this.entries) {
      const length = commonPrefix(entry.tokens, prompt, Math.min(prompt.length - 1, entry.target.length));
      if (length >= MIN_TOKENS && (!best || length > best.length)) best = { entry, length };
    }
    if (best) this.entries.push(...this.entries.splice(this.entries.indexOf(best.entry), 1));
    return best;
  }

  /** A new sequence's caches: copies of the longest cached prefix of `prompt`, the draft's too (`drafts`); null where
   * none is cached. */
  startFrom(prompt: number[], drafts: boolean): { cache: KvCache; draftPrefix?: { cache: KvCache; tokens: number[] } } | null {
    const hit = this.lookup(prompt);
    if (!hit) return null;
    const draft = drafts ? hit.entry.draft : undefined;
    const common = draft ? commonPrefix(draft.tokens, prompt, Math.min(hit.length, draft.cache.length)) : 0;
    return {
      cache: hit.entry.target.fork(hit.length),
      ...(draft && common > 0 ? { draftPrefix: { cache: draft.cache.fork(common), tokens: prompt.slice(0, common) } } : {}),
    };
  }

  /** Keeps a copy of what a finished sequence's cache holds (prompt and output: `tokens` from the first), with its
   * draft's (a copy already, owned from now on). A copy, not the cache itself: the memory the sequence frees goes back
   * to the pool, where the next request's home or a prefix hit's copy finds it already faulted in. */
  keepFinished(tokens: readonly number[], cache: KvCache, draft: { cache: KvCache; tokens: number[] } | null): void {
    const bytes = cache.bytes + (draft?.cache.bytes ?? 0);
    if (cache.length < MIN_TOKENS || bytes > this.budgetBytes) {
      draft?.cache.clear(); // not worth a copy, or never fits: no copy made only to be dropped
      return;
    }
    const kept = tokens.slice(0, cache.length);
    // Room first: the memory of the entries it replaces goes back to the pool, where the copy finds memory already
    // faulted in instead of fresh memory (a page fault per page, tens of ms per request on a large model).
    this.makeRoom(kept, bytes);
    this.insert({ tokens: kept, target: cache.fork(cache.length), ...(draft ? { draft } : {}) });
  }

  /** Drops the entries an entry of `tokens` would cover (prefixes of it), then the least recently used while one of
   * `bytes` would not fit the budget (nothing where it never fits: insert refuses it). */
  private makeRoom(tokens: readonly number[], bytes: number): void {
    if (bytes > this.budgetBytes) return;
    this.entries = this.entries.filter((e) => {
      const covered = e.tokens.length <= tokens.length && commonPrefix(e.tokens, tokens, e.tokens.length) === e.tokens.length;
      if (covered) drop(e);
      return !covered;
    });
    let total = this.bytes;
    while (total + bytes > this.budgetBytes && this.entries.length > 0) {
      const old = this.entries.shift()!;
      total -= entryBytes(old);
      drop(old);
    }
  }

  /** Keeps `entry` (it owns its caches from now on); entries it extends go, then the least recently used while over
   * the budget. */
  insert(entry: PrefixEntry): void {
    if (entry.tokens.length < MIN_TOKENS || entryBytes(entry) > this.budgetBytes) return drop(entry);
    this.makeRoom(entry.tokens, entryBytes(entry));
    this.entries.push(entry);
  }

  clear(): void {
    this.entries.forEach(drop);
    this.entries = [];
  }
}

export function commonPrefix(a: readonly number[], b: readonly number[], limit = Infinity): number {
  let n = 0;
  const max = Math.min(a.length, b.length, limit);
  while (n < max && a[n] === b[n]) n++;
  return n;
}

function entryBytes(e: PrefixEntry): number {
  return e.target.bytes + (e.draft?.cache.bytes ?? 0);
}

function drop(e: PrefixEntry): void {
  e.target.clear();
  e.draft?.cache.clear();
}
