// Token masks from the JSON automaton: which vocabulary tokens keep the output a valid prefix of a document. The
// vocabulary's byte strings are arranged in a trie and walked from the current state, pruning every subtree whose
// prefix the automaton rejects, so tokens sharing a prefix share its work. Masks are cached per state key: most
// states recur (inside a free string, between properties), as XGrammar observes, and hit the cache.
import { canEnd, feed, initialState, mustEnd, stateKey, type JsonState } from './json-automaton.ts';
import type { SchemaNode } from './json-schema.ts';
import type { Constraint } from './constraint.ts';

interface TrieNode {
  children: Map<number, TrieNode>;
  tokens: number[];
}

// Cached masks per constraint (a mask of a 32k vocabulary is 32 KB).
const MAX_CACHED_MASKS = 2048;

/** Everything about the vocabulary that masks need; built once per tokenizer and shared by all requests. */
export class VocabularyTrie {
  readonly root: TrieNode = { children: new Map(), tokens: [] };
  readonly maxTokenBytes: number;

  constructor(readonly tokenBytes: (Uint8Array | null)[], readonly eosTokenIds: number[]) {
    let longest = 0;
    tokenBytes.forEach((bytes, id) => {
      if (!bytes || bytes.length === 0) return;
      longest = Math.max(longest, bytes.length);
      let node = this.root;
      for (const b of bytes) {
        let child = node.children.get(b);
        if (!child) node.children.set(b, (child = { children: new Map(), tokens: [] }));
        node = child;
      }
      node.tokens.push(id);
    });
    this.maxTokenBytes = longest;
  }

  get size(): number {
    return this.tokenBytes.length;
  }
}

/** A JSON constraint for one schema: masks, token-level advance, and whether the document is complete. */
export class JsonConstraint implements Constraint<JsonState> {
  private readonly cache = new Map<string, Uint8Array>();
  /** Counters for the benchmark: masks computed vs served from the cache. */
  numComputed = 0;
  numCached = 0;

  constructor(readonly schema: SchemaNode, readonly vocab: VocabularyTrie) {}

  start(): JsonState {
    return initialState(this.schema);
  }

  /** 1 for every token allowed next (EOS only where the document may end). */
  allowed(state: JsonState): Uint8Array {
    const key = stateKey(state, this.vocab.maxTokenBytes);
    const hit = this.cache.get(key);
    if (hit) {
      this.numCached++;
      return hit;
    }
    this.numComputed++;
    const mask = new Uint8Array(this.vocab.size);
    const walk = (node: TrieNode, s: JsonState) => {
      for (const [b, child] of node.children) {
        const next = feed(s, b);
        if (!next) continue;
        for (const id of child.tokens) mask[id] = 1;
        walk(child, next);
      }
    };
    walk(this.vocab.root, state);
    if (canEnd(state)) for (const id of this.vocab.eosTokenIds) mask[id] = 1;
    if (this.cache.size >= MAX_CACHED_MASKS) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, mask);
    return mask;
  }

  /** The state after a whole token, or null when the token is not allowed (EOS: allowed only where it may end). */
  advance(state: JsonState, token: number): JsonState | null {
    if (this.vocab.eosTokenIds.includes(token)) return canEnd(state) ? state : null;
    const bytes = this.vocab.tokenBytes[token];
    if (!bytes || bytes.length === 0) return null;
    let s: JsonState | null = state;
    for (const b of bytes) {
      s = feed(s, b);
      if (!s) return null;
    }
    return s;
  }

  /** Nothing but the end of the sequence may follow. */
  isComplete(state: JsonState): boolean {
    return mustEnd(state);
  }
}

/** Sets disallowed logits to -Infinity (a copy: the raw logits still serve logprobs). */
export function maskLogits(logits: Float32Array, mask: Uint8Array): Float32Array {
  const out = new Float32Array(logits.length);
  for (let i = 0; i < logits.length; i++) out[i] = mask[i] ? logits[i] : -Infinity;
  return out;
}
