// The pure parts of structured output: cache keys, the edge's bounds, EBNF literals, the repairs to XGrammar's JSON
// EBNF, and token bitmasks.
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { checkGrammarSpec, choiceGrammar, ebnfString, GrammarError, grammarKey, MAX_GRAMMAR_DEPTH, tightenJsonEbnf } from '../../../../src/runtime/structured/grammar-spec.ts';
import { allows, maskedArgmax, maskLogits, maskOf } from '../../../../src/runtime/structured/token-bitmask.ts';
import { argmax } from '../../../../src/runtime/sampling.ts';

describe('grammar specs', () => {
  it('keys differ across kinds with the same text, and match for the same spec', () => {
    const keys = [
      grammarKey({ type: 'regex', pattern: 'a' }), grammarKey({ type: 'grammar', ebnf: 'a' }), grammarKey({ type: 'choice', choices: ['a'] }),
      grammarKey({ type: 'json', schema: 'a' }), grammarKey({ type: 'structural_tag', tag: 'a' }), grammarKey({ type: 'json' }),
    ];
    expect(new Set(keys).size).toBe(keys.length);
    expect(grammarKey({ type: 'json', schema: { type: 'object' } })).toBe(grammarKey({ type: 'json', schema: { type: 'object' } }));
    // Text that would join into the same string under a naive separator.
    expect(grammarKey({ type: 'choice', choices: ['a,b'] })).not.toBe(grammarKey({ type: 'choice', choices: ['a', 'b'] }));
  });

  it('bounds nesting without recursion, and refuses empty choices, regexes and grammars', () => {
    let deep: unknown = { type: 'string' };
    for (let i = 0; i < 5000; i++) deep = { type: 'array', items: deep };
    expect(() => checkGrammarSpec({ type: 'json', schema: deep })).toThrow(new GrammarError(`schemas may nest at most ${MAX_GRAMMAR_DEPTH} levels`));
    let ok: unknown = { type: 'string' };
    for (let i = 1; i < MAX_GRAMMAR_DEPTH; i++) ok = { items: ok };
    expect(() => checkGrammarSpec({ type: 'json', schema: ok })).not.toThrow();
    expect(() => checkGrammarSpec({ type: 'choice', choices: [] })).toThrow(GrammarError);
    expect(() => checkGrammarSpec({ type: 'choice', choices: ['a', ''] })).toThrow(GrammarError);
    expect(() => checkGrammarSpec({ type: 'regex', pattern: '' })).toThrow(GrammarError);
    expect(() => checkGrammarSpec({ type: 'grammar', ebnf: '  ' })).toThrow(GrammarError);
  });

  it('EBNF string literals escape quotes, backslashes and everything outside printable ASCII', () => {
    expect(ebnfString('say "hi"\\')).toBe('"say \\"hi\\"\\\\"');
    expect(ebnfString('a\nb\u00e9\u{1F600}')).toBe('"a\\u000ab\\u00e9\\U0001f600"');
    expect(choiceGrammar(['yes', 'no'])).toBe('root ::= "yes" | "no"');
  });

  it("tightens XGrammar's JSON EBNF: no raw control characters in bounded strings, bounded whitespace and digits", () => {
    const ebnf = String.raw`string ::= "\"" [^"\\\r\n]{0,5} "\""
basic_array ::= "[" [ \n\t]* basic_any "]"
basic_number ::= "-"? ("0" | [1-9] [0-9]*) ("." [0-9]+)? ([eE] [+-]? [0-9]+)?`;
    expect(tightenJsonEbnf(ebnf)).toBe(String.raw`string ::= "\"" [^\0-\x1f"\\]{0,5} "\""
basic_array ::= "[" [ \n\t]{0,1} basic_any "]"
basic_number ::= "-"? ("0" | [1-9] [0-9]{0,15}) ("." [0-9]{1,16})? ([eE] [+-]? [0-9]{1,3})?`);
  });
});

describe('token bitmasks', () => {
  it('property: maskOf allows exactly its ids, and maskLogits keeps exactly the allowed logits', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 200 }).chain((v) => fc.tuple(fc.constant(v), fc.uniqueArray(fc.integer({ min: 0, max: v - 1 })))),
      ([vocab, ids]) => {
        const mask = maskOf(ids, vocab);
        const logits = Float32Array.from({ length: vocab }, (_, i) => i * 0.5 - 3);
        const masked = maskLogits(logits, mask);
        for (let t = 0; t < vocab; t++) {
          expect(allows(mask, t)).toBe(ids.includes(t));
          expect(masked[t]).toBe(ids.includes(t) ? logits[t] : -Infinity);
        }
      }));
  });

  it('property: the same for masks that refuse few tokens (a row copied, then cleared) and allow few (the reverse)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }).chain((v) => fc.tuple(fc.constant(v), fc.uniqueArray(fc.integer({ min: 0, max: v - 1 }), { maxLength: 12 }), fc.boolean())),
      ([vocab, few, refuse]) => {
        const ids = refuse ? Array.from({ length: vocab }, (_, i) => i).filter((i) => !few.includes(i)) : few;
        const logits = Float32Array.from({ length: vocab }, (_, i) => i * 0.25 - 7);
        const masked = maskLogits(logits, maskOf(ids, vocab));
        for (let t = 0; t < vocab; t++) expect(masked[t]).toBe(ids.includes(t) ? logits[t] : -Infinity);
      }));
  });

  it('property: maskedArgmax is the argmax of the masked copy (ties to the first), whatever the logits and the mask', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 300 }).chain((v) => fc.tuple(
      fc.array(fc.integer({ min: -4, max: 4 }), { minLength: v, maxLength: v }), // few values: many ties
      fc.uniqueArray(fc.integer({ min: 0, max: v - 1 }), { minLength: 1 }), fc.boolean())),
    ([values, few, refuse]) => {
      const vocab = values.length;
      const ids = refuse && few.length < vocab ? Array.from({ length: vocab }, (_, i) => i).filter((i) => !few.includes(i)) : few;
      const logits = Float32Array.from(values);
      const mask = maskOf(ids, vocab);
      expect(maskedArgmax(logits, mask)).toBe(argmax(maskLogits(logits, mask)));
    }));
  });

  it('maskedArgmax: an allowed token even where every allowed logit is -Infinity; never one past the mask', () => {
    expect(maskedArgmax(Float32Array.of(5, -Infinity, -Infinity), maskOf([1, 2], 3))).toBe(1);
    expect(maskedArgmax(Float32Array.of(1, 2, 3), maskOf([0, 1], 2))).toBe(1);
    expect(maskedArgmax(Float32Array.of(1, 2, 3), maskOf([], 3))).toBe(argmax(maskLogits(Float32Array.of(1, 2, 3), maskOf([], 3))));
  });

  it('logits beyond the mask are disallowed', () => {
    expect(Array.from(maskLogits(Float32Array.of(1, 2, 3), maskOf([0, 1], 2)))).toEqual([1, 2, -Infinity]);
  });
});
