// What a request constrains its output to, as plain data (it crosses threads), checked once at the edge, keyed for
// the compiled-grammar cache, and compiled by XGrammar (in a grammar worker: grammar-worker.ts).
import type { StructuralTagLike } from '@mlc-ai/web-xgrammar';
import type { CompiledGrammar, GrammarCompiler } from './xgrammar.ts';

export type GrammarSpec =
  /** A JSON schema (XGrammar's: pattern, anyOf/oneOf, $ref/$defs, minimum/maximum, format, ...); absent: any JSON
   * (response_format json_object, XGrammar's builtin JSON grammar). */
  | { type: 'json'; schema?: unknown; wrap?: JsonWrap }
  | { type: 'regex'; pattern: string }
  /** Exactly one of these strings. */
  | { type: 'choice'; choices: string[] }
  /** An EBNF grammar in XGrammar's dialect (GBNF-like; the root rule is `root`). */
  | { type: 'grammar'; ebnf: string }
  /** An XGrammar structural tag ({"type": "structural_tag", "format": {...}}). */
  | { type: 'structural_tag'; tag: unknown };

/** A schema's document between `begin` and `end`; with `separator`, one or more such, separated by it (tool calls). */
export interface JsonWrap {
  begin: string;
  end: string;
  separator?: string;
}

/** Schemas and structural tags nest at most this deep: XGrammar converts them recursively, and a schema of
 * thousands of levels would exhaust its stack. */
export const MAX_GRAMMAR_DEPTH = 32;
export const MAX_CHOICES = 1024;
/** Whitespace characters allowed between the tokens of a JSON document: one, as in `{"a": 1}` or a line break; no
 * room for a model to idle in whitespace until max_tokens. */
const MAX_JSON_WHITESPACE = 1;
const MAX_DIGITS = 16;

/** A request's grammar that can never compile (the edge answers 400 with `message`). */
export class GrammarError extends Error {}

/** Too many new grammars wait for their compile: this one is not taken now (the edge answers 429). */
export class GrammarBusyError extends Error {}

/** Checks the shape and bounds XGrammar cannot be trusted with; what it refuses itself comes back from the compile. */
export function checkGrammarSpec(spec: GrammarSpec): void {
  switch (spec.type) {
    case 'json':
      if (spec.schema !== undefined) checkDepth(spec.schema, 'schemas');
      return;
    case 'structural_tag':
      checkDepth(spec.tag, 'structural tags');
      return;
    case 'choice':
      if (spec.choices.length === 0) throw new GrammarError('guided_choice needs at least one choice');
      if (spec.choices.length > MAX_CHOICES) throw new GrammarError(`guided_choice takes at most ${MAX_CHOICES} choices`);
      if (spec.choices.some((c) => c.length === 0)) throw new GrammarError('guided_choice choices must not be empty strings');
      return;
    case 'regex':
      if (spec.pattern.length === 0) throw new GrammarError('guided_regex must not be empty');
      return;
    case 'grammar':
      if (spec.ebnf.trim().length === 0) throw new GrammarError('guided_grammar must not be empty');
  }
}

/** Nesting depth of objects and arrays, without recursion (the value may be thousands of levels deep). */
function checkDepth(value: unknown, what: string): void {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > MAX_GRAMMAR_DEPTH) throw new GrammarError(`${what} may nest at most ${MAX_GRAMMAR_DEPTH} levels`);
    for (const child of Object.values(v)) stack.push([child, depth + 1]);
  }
}

/** The cache key of a spec: its kind and its source, so that different kinds of the same text never share a key. */
export function grammarKey(spec: GrammarSpec): string {
  switch (spec.type) {
    case 'json':
      return JSON.stringify(['json', spec.schema ?? null, spec.wrap ?? null]);
    case 'regex':
      return JSON.stringify(['regex', spec.pattern]);
    case 'choice':
      return JSON.stringify(['choice', spec.choices]);
    case 'grammar':
      return JSON.stringify(['grammar', spec.ebnf]);
    case 'structural_tag':
      return JSON.stringify(['structural_tag', spec.tag]);
  }
}

/** XGrammar's conversion of a JSON schema to EBNF (its Testings._jsonSchemaToEBNF, the converter compileJSONSchema
 * runs): any whitespace, at most MAX_JSON_WHITESPACE in a row where it bounds it, strict (no properties beyond the
 * schema's). */
export type SchemaToEbnf = (schema: string, anyWhitespace: boolean, indent: number | undefined, separators: undefined,
  strictMode: boolean, maxWhitespace: number) => Promise<string>;

export async function compileGrammar(compiler: GrammarCompiler, spec: GrammarSpec, schemaToEbnf: SchemaToEbnf): Promise<CompiledGrammar> {
  switch (spec.type) {
    case 'json':
      if (spec.schema === undefined) return compiler.compileBuiltinJSONGrammar();
      return compiler.compileGrammar(wrapEbnf(tightenJsonEbnf(await schemaToEbnf(JSON.stringify(spec.schema), true, undefined, undefined, true, MAX_JSON_WHITESPACE)), spec.wrap));
    case 'regex':
      return compiler.compileStructuralTag({ type: 'structural_tag', format: { type: 'regex', pattern: spec.pattern } });
    case 'choice':
      return compiler.compileGrammar(choiceGrammar(spec.choices));
    case 'grammar':
      return compiler.compileGrammar(spec.ebnf);
    case 'structural_tag':
      return compiler.compileStructuralTag(spec.tag as StructuralTagLike);
  }
}

/**
 * Repairs to the EBNF that XGrammar 0.1.27 writes for a JSON schema (no-ops where a later XGrammar writes it right):
 * - a string with a length bound is [^"\\\r\n]{m,n}, which admits raw control characters (JSON forbids them, and
 *   JSON.parse refuses the document): that class excludes \0-\x1f too;
 * - the free values of basic_array and basic_object separate their items by [ \n\t]*, room for a model to idle in
 *   whitespace until max_tokens: bounded like the rest of the document;
 * - numbers have unbounded digits, where a model can idle too: at most MAX_DIGITS per part (float64 holds 15-17
 *   significant digits, so any further one is noise), three in an exponent.
 */
export function tightenJsonEbnf(ebnf: string): string {
  return ebnf.replaceAll(String.raw`[^"\\\r\n]`, String.raw`[^\0-\x1f"\\]`)
    .replaceAll(String.raw`[ \n\t]*`, String.raw`[ \n\t]{0,` + MAX_JSON_WHITESPACE + '}')
    .replaceAll('[1-9] [0-9]*', `[1-9] [0-9]{0,${MAX_DIGITS - 1}}`)
    .replaceAll('"." [0-9]+', `"." [0-9]{1,${MAX_DIGITS}}`)
    .replaceAll('[+-]? [0-9]+', '[+-]? [0-9]{1,3}');
}

/** A JSON grammar's documents between literals: its root renamed, and a root around it. */
export function wrapEbnf(ebnf: string, wrap: JsonWrap | undefined): string {
  if (!wrap) return ebnf;
  const inner = ebnf.replace(/^root ::=/m, 'wrapped_document ::=');
  const one = `${ebnfString(wrap.begin)} wrapped_document ${ebnfString(wrap.end)}`;
  return `${inner}\nroot ::= ${one}${wrap.separator === undefined ? '' : ` (${ebnfString(wrap.separator)} ${one})*`}\n`;
}

/** An EBNF grammar whose language is exactly `choices`. */
export function choiceGrammar(choices: string[]): string {
  return `root ::= ${choices.map(ebnfString).join(' | ')}`;
}

/** A string literal of XGrammar's EBNF: quotes and backslashes escaped, anything outside printable ASCII as \uXXXX
 * (or \UXXXXXXXX beyond the BMP). */
export function ebnfString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const code = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (code >= 0x20 && code < 0x7f) out += ch;
    else if (code <= 0xffff) out += `\\u${code.toString(16).padStart(4, '0')}`;
    else out += `\\U${code.toString(16).padStart(8, '0')}`;
  }
  return `${out}"`;
}
