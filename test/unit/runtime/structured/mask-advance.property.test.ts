// The structured-output invariant, property-based: at every state reached by a token walk, a token is allowed by the
// mask exactly when advance() accepts it, for generated schemas (property names and enum options with the separators
// a cache key could confuse: ',' '|' ':' '/' quotes) over a vocabulary with multi-byte tokens. One constraint serves
// every walk of a schema, so masks come from its cache as they do in the server.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compileSchema } from '../../../../src/runtime/structured/json-schema.ts';
import { JsonConstraint, VocabularyTrie } from '../../../../src/runtime/structured/token-masker.ts';
import type { JsonState } from '../../../../src/runtime/structured/json-automaton.ts';

const EOS = 0;
// Names built from the separators a joined key uses, so that walks meet states such keys would confuse.
const name = fc.oneof({ weight: 6, arbitrary: fc.constantFrom('a', 'b', 'a,b') }, { weight: 2, arbitrary: fc.constantFrom('a|b', '|', 'b,a') },
  { weight: 1, arbitrary: fc.stringMatching(/^[ab,|:/"\\ ]{0,3}$/) });
const scalar = fc.oneof(
  fc.constant({ type: 'string', maxLength: 3 }), fc.constant({ type: 'integer' }), fc.constant({ type: 'boolean' }),
  fc.constant({ type: 'null' }), fc.constant({ type: 'integer' }), fc.uniqueArray(name, { minLength: 1, maxLength: 3 }).map((options) => ({ enum: options })),
);
const schema = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('object'),
    fc.record({ type: fc.constant('array'), items: scalar, maxItems: fc.integer({ min: 0, max: 2 }) })),
  object: fc.uniqueArray(name, { maxLength: 4 }).chain((names) => fc.record({
    type: fc.constant('object'),
    additionalProperties: fc.constant(false),
    properties: fc.tuple(...names.map(() => tie('value'))).map((values) => Object.fromEntries(names.map((n, i) => [n, values[i]]))),
    required: fc.subarray(names),
  })),
})).object;

type Node = { type?: string; enum?: string[]; items?: Node; maxItems?: number; properties?: Record<string, Node>; required?: string[] };

/** Documents that match `node`: every subset (with the required) and order of properties. */
function documentFor(node: Node): fc.Arbitrary<string> {
  if (node.enum) return fc.constantFrom(...node.enum).map((o) => JSON.stringify(o));
  switch (node.type) {
    case 'object': {
      const names = Object.keys(node.properties ?? {});
      const required = new Set(node.required ?? []);
      return fc.shuffledSubarray(names).chain((picked) => {
        const chosen = [...new Set([...picked, ...names.filter((n) => required.has(n))])];
        return fc.tuple(...chosen.map((n) => documentFor(node.properties![n])))
          .map((values) => `{${chosen.map((n, i) => `${JSON.stringify(n)}:${values[i]}`).join(',')}}`);
      });
    }
    case 'array': return fc.array(documentFor(node.items!), { maxLength: node.maxItems ?? 2 }).map((xs) => `[${xs.join(',')}]`);
    case 'string': return fc.stringMatching(/^[ab,|]{0,3}$/).map((x) => JSON.stringify(x));
    case 'integer': return fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: -99, max: 99 })).map(String);
    case 'boolean': return fc.boolean().map(String);
    default: return fc.constant('null');
  }
}

/** Single printable bytes, and multi-byte tokens cut from the schema's names and JSON punctuation. */
function vocabulary(s: unknown): VocabularyTrie {
  const pieces = new Set<string>(['{"', '":', '","', '"}', ', "', 'true', 'null', '[', '],', '12', ',"', '|"', '"a,b"', 'a|b', 'b,']);
  JSON.stringify(s).replace(/"((?:[^"\\]|\\.)*)"/g, (_, inner: string) => {
    pieces.add(inner);
    pieces.add(`"${inner}"`);
    pieces.add(`"${inner}":`);
    return '';
  });
  const tokens: (Uint8Array | null)[] = [null]; // id 0: EOS
  for (let b = 0x20; b < 0x7f; b++) tokens.push(Uint8Array.of(b));
  for (const p of pieces) if (p.length > 1) tokens.push(new TextEncoder().encode(p));
  return new VocabularyTrie(tokens, [EOS]);
}

describe('masks agree with advance()', () => {
  it('every allowed token is accepted and every accepted token allowed, along random walks (cached masks)', () => {
    fc.assert(fc.property(schema, fc.array(fc.array(fc.nat(), { minLength: 1, maxLength: 40 }), { minLength: 1, maxLength: 8 }), (s, walks) => {
      const vocab = vocabulary(s);
      const constraint = new JsonConstraint(compileSchema(s), vocab);
      for (const walk of walks) {
        let state: JsonState = constraint.start();
        for (const choice of walk) {
          const mask = constraint.allowed(state);
          const allowed: number[] = [];
          for (let t = 0; t < vocab.tokenBytes.length; t++) {
            const accepted = constraint.advance(state, t) !== null;
            expect(mask[t] === 1, `token ${JSON.stringify(new TextDecoder().decode(vocab.tokenBytes[t] ?? new Uint8Array()))}`).toBe(accepted);
            if (accepted) allowed.push(t);
          }
          expect(allowed.length).toBeGreaterThan(0); // never a dead end
          // Mostly whole pieces (names, punctuation): walks then reach deep states, not just single bytes.
          const pieces = allowed.filter((t) => (vocab.tokenBytes[t]?.length ?? 0) > 1);
          const pool = pieces.length > 0 && choice % 4 !== 0 ? pieces : allowed;
          const token = pool[Math.floor(choice / 4) % pool.length];
          if (token === EOS || constraint.isComplete(state)) break;
          state = constraint.advance(state, token)!;
        }
      }
    }), { numRuns: 150, seed: 20261204 });
  });

  it('along documents of the schema (every order of its properties), tokenized greedily, masks agree with advance()', () => {
    const withDocuments = schema.chain((s) => fc.tuple(fc.constant(s), fc.array(documentFor(s as Node), { minLength: 1, maxLength: 10 })));
    fc.assert(fc.property(withDocuments, ([s, documents]) => {
      const vocab = vocabulary(s);
      const pieces = vocab.tokenBytes.map((b, id) => ({ id, text: b ? new TextDecoder().decode(b) : '' })).filter((p) => p.text)
        .sort((a, b) => b.text.length - a.text.length);
      const constraint = new JsonConstraint(compileSchema(s), vocab);
      for (const document of documents) {
        let state: JsonState = constraint.start();
        for (let at = 0; at < document.length;) {
          const token = pieces.find((p) => document.startsWith(p.text, at))!;
          const mask = constraint.allowed(state);
          for (let t = 0; t < vocab.tokenBytes.length; t++) {
            expect(mask[t] === 1, `${document} at ${at}: token ${t}`).toBe(constraint.advance(state, t) !== null);
          }
          expect(mask[token.id], `${document} at ${at}`).toBe(1);
          state = constraint.advance(state, token.id)!;
          at += token.text.length;
        }
        expect(constraint.allowed(state)[EOS], document).toBe(1);
      }
    }), { numRuns: 150, seed: 20261204 });
  });

  it('keys apart the states a joined key confused: used properties "a,b" against "a" and "b"', () => {
    const s = { type: 'object', additionalProperties: false, required: ['a', 'b'],
      properties: { 'a,b': { type: 'integer' }, a: { type: 'integer' }, b: { type: 'integer' } } };
    const vocab = vocabulary(s);
    const c = new JsonConstraint(compileSchema(s), vocab);
    const byte = (ch: string) => 1 + ch.charCodeAt(0) - 0x20;
    const walk = (text: string) => {
      let state: JsonState | null = c.start();
      for (const ch of text) state = c.advance(state!, byte(ch));
      return state!;
    };
    // Both have used properties that a comma-joined key spells "a,b"; only the second may close the object.
    const afterAB = walk('{"a,b":1');
    const afterAandB = walk('{"a":1,"b":2');
    expect(c.allowed(afterAandB)[byte('}')]).toBe(1);
    expect(c.allowed(afterAB)[byte('}')]).toBe(0);
    expect(c.advance(afterAB, byte('}'))).toBeNull();
  });
});
