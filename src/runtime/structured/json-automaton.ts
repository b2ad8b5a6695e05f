// A byte-level pushdown automaton for JSON documents that match a compiled schema (json-schema.ts). States are
// immutable (a linked stack of frames), so keeping an old state is a free rollback, and a state's key identifies
// it for mask caching. Numbers end on the first byte that cannot continue them, which is then fed to the parent.
import { ANY_VALUE, MAX_SCHEMA_DEPTH, type SchemaNode } from './json-schema.ts';

// Consecutive whitespace bytes allowed between tokens of the document: one space or newline, as in "{ \"a\": 1 }";
// no room for a model to idle in whitespace forever.
const MAX_WHITESPACE = 1;
// Digits per number part: beyond float64 precision any further digit is noise, and a bound guarantees termination.
const MAX_DIGITS = 16;

type Frame =
  | { k: 'value'; node: SchemaNode; ws: number }
  | { k: 'object'; node: SchemaNode; phase: 'open' | 'key' | 'colon' | 'next'; used: string[]; key: string; ws: number }
  | { k: 'array'; node: SchemaNode; phase: 'open' | 'next'; count: number; ws: number }
  | { k: 'string'; node: SchemaNode | null; len: number; esc: number; cont: number }
  | { k: 'number'; integer: boolean; phase: NumberPhase; digits: number }
  | { k: 'literal'; options: string[]; text: string }
  | { k: 'done' };

type NumberPhase = 'sign' | 'zero' | 'int' | 'dot' | 'frac' | 'e' | 'esign' | 'exp';

export interface JsonState {
  readonly f: Frame;
  readonly up: JsonState | null;
}

const push = (f: Frame, up: JsonState | null): JsonState => ({ f, up });
const isWs = (b: number) => b === 0x20 || b === 0x0a;
const isDigit = (b: number) => b >= 0x30 && b <= 0x39;
const HEX = /[0-9a-fA-F]/;

export function initialState(root: SchemaNode): JsonState {
  return push({ k: 'value', node: root, ws: 0 }, push({ k: 'done' }, null));
}

/** The parent of a finished value moves on (object: to ',' or '}'; array: likewise; root: done). */
function valueDone(up: JsonState | null, literal?: string): JsonState | null {
  if (!up) return null;
  const f = up.f;
  if (f.k === 'object') {
    if (f.phase === 'key') return push({ ...f, phase: 'colon', key: literal ?? '', ws: 0 }, up.up);
    return push({ ...f, phase: 'next', ws: 0 }, up.up);
  }
  if (f.k === 'array') return push({ ...f, phase: 'next', count: f.count + 1, ws: 0 }, up.up);
  return up; // done
}

/** Open objects and arrays above this state. */
function nesting(s: JsonState | null): number {
  let n = 0;
  for (let x = s; x; x = x.up) if (x.f.k === 'object' || x.f.k === 'array') n++;
  return n;
}

function startValue(node: SchemaNode, b: number, up: JsonState | null): JsonState | null {
  // Free values (json_object, unconstrained items) could nest without end: documents nest as deep as schemas may.
  if ((b === 0x7b || b === 0x5b) && nesting(up) > MAX_SCHEMA_DEPTH) return null;
  if (node.literals) return feed(push({ k: 'literal', options: node.literals, text: '' }, up), b);
  const t = node.types;
  if (b === 0x7b && t.has('object')) return push({ k: 'object', node, phase: 'open', used: [], key: '', ws: 0 }, up);
  if (b === 0x5b && t.has('array')) return push({ k: 'array', node, phase: 'open', count: 0, ws: 0 }, up);
  if (b === 0x22 && t.has('string')) return push({ k: 'string', node, len: 0, esc: 0, cont: 0 }, up);
  if ((b === 0x2d || isDigit(b)) && (t.has('number') || t.has('integer'))) {
    return feed(push({ k: 'number', integer: !t.has('number'), phase: 'sign', digits: 0 }, up), b);
  }
  if ((b === 0x74 || b === 0x66) && t.has('boolean')) return feed(push({ k: 'literal', options: ['true', 'false'], text: '' }, up), b);
  if (b === 0x6e && t.has('null')) return feed(push({ k: 'literal', options: ['null'], text: '' }, up), b);
  return null;
}

function remainingKeys(f: Extract<Frame, { k: 'object' }>): string[] {
  return [...f.node.properties!.keys()].filter((k) => !f.used.includes(k));
}

/** The state after one more byte, or null when the byte cannot appear here. */
export function feed(s: JsonState, b: number): JsonState | null {
  const f = s.f;
  const up = s.up;
  switch (f.k) {
    case 'done':
      return null;
    case 'value':
      if (isWs(b)) return f.ws < MAX_WHITESPACE ? push({ ...f, ws: f.ws + 1 }, up) : null;
      return startValue(f.node, b, up);
    case 'object': {
      if (isWs(b)) return f.ws < MAX_WHITESPACE ? push({ ...f, ws: f.ws + 1 }, up) : null;
      const schemaKeys = f.node.properties;
      const canClose = [...f.node.required].every((r) => f.used.includes(r));
      if ((f.phase === 'open' || f.phase === 'next') && b === 0x7d) return canClose ? valueDone(up) : null;
      if (f.phase === 'next' && b === 0x2c) {
        if (schemaKeys && remainingKeys(f).length === 0) return null;
        return push({ ...f, phase: 'key', ws: 0 }, up);
      }
      if ((f.phase === 'open' || f.phase === 'key') && b === 0x22) {
        const self = { ...f, phase: 'key' as const, ws: 0 };
        if (!schemaKeys) return push({ k: 'string', node: null, len: 0, esc: 0, cont: 0 }, push(self, up));
        const options = remainingKeys(f).map((k) => JSON.stringify(k));
        if (options.length === 0) return null;
        return feed(push({ k: 'literal', options, text: '' }, push(self, up)), b);
      }
      if (f.phase === 'colon' && b === 0x3a) {
        const node = schemaKeys ? schemaKeys.get(f.key)! : ANY_VALUE;
        return push({ k: 'value', node, ws: 0 }, push({ ...f, phase: 'next', used: schemaKeys ? [...f.used, f.key] : f.used, ws: 0 }, up));
      }
      return null;
    }
    case 'array': {
      if (isWs(b)) return f.ws < MAX_WHITESPACE ? push({ ...f, ws: f.ws + 1 }, up) : null;
      if (b === 0x5d) return f.count >= f.node.minItems ? valueDone(up) : null;
      if (f.phase === 'next') {
        if (b !== 0x2c || (f.node.maxItems !== undefined && f.count >= f.node.maxItems)) return null;
        return push({ k: 'value', node: f.node.items!, ws: 0 }, push({ ...f, phase: 'open', ws: 0 }, up));
      }
      if (f.node.maxItems !== undefined && f.count >= f.node.maxItems) return null;
      // phase 'open': the first element starts right here; the array resumes in 'next' once it is done.
      const self = push({ ...f, phase: 'open', ws: 0 }, up);
      return startValue(f.node.items!, b, self);
    }
    case 'string': {
      if (f.esc > 0) {
        // esc 1: after a backslash; 2..5: inside \uXXXX.
        if (f.esc === 1) {
          if (b === 0x75) return push({ ...f, esc: 2 }, up);
          return '"\\/bfnrt'.includes(String.fromCharCode(b)) ? push({ ...f, esc: 0, len: f.len + 1 }, up) : null;
        }
        if (!HEX.test(String.fromCharCode(b))) return null;
        return push(f.esc === 5 ? { ...f, esc: 0, len: f.len + 1 } : { ...f, esc: f.esc + 1 }, up);
      }
      // Text must be valid UTF-8: a lead byte announces its continuation bytes, and only those may follow it.
      const isContinuation = b >= 0x80 && b < 0xc0;
      if (f.cont > 0) return isContinuation ? push({ ...f, cont: f.cont - 1 }, up) : null;
      if (b === 0x22) return f.len >= (f.node?.minLength ?? 0) ? valueDone(up) : null;
      if (b < 0x20 || isContinuation || b === 0xc0 || b === 0xc1 || b > 0xf4) return null; // control characters must be escaped
      const cont = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
      const len = f.len + 1;
      if (f.node?.maxLength !== undefined && len > f.node.maxLength) return null;
      if (b === 0x5c) return push({ ...f, esc: 1, len: f.len }, up);
      return push({ ...f, len, cont }, up);
    }
    case 'number':
      return feedNumber(f, b, up);
    case 'literal': {
      const text = f.text + String.fromCharCode(b);
      const matches = f.options.filter((o) => o.startsWith(text));
      if (matches.length > 0) {
        // Done as soon as no longer option could follow; otherwise wait (an enum of 1 and 12).
        if (matches.length === 1 && matches[0] === text) return valueDone(up, literalValue(text));
        return push({ k: 'literal', options: matches, text }, up);
      }
      // A literal that could be complete (numbers in an enum) ends here; the byte belongs to the parent.
      if (f.options.includes(f.text)) {
        const parent = valueDone(up, literalValue(f.text));
        return parent ? feed(parent, b) : null;
      }
      return null;
    }
  }
}

const literalValue = (text: string): string => (text.startsWith('"') ? JSON.parse(text) : text);

function feedNumber(f: Extract<Frame, { k: 'number' }>, b: number, up: JsonState | null): JsonState | null {
  const next = (phase: NumberPhase, digits = 0) => push({ ...f, phase, digits }, up);
  const digit = isDigit(b);
  switch (f.phase) {
    case 'sign':
      if (b === 0x2d && f.digits === 0) return push({ ...f, phase: 'sign', digits: -1 }, up); // '-' seen (digits -1 marks it)
      if (b === 0x30) return next('zero');
      if (digit) return next('int', 1);
      return null;
    case 'zero':
    case 'int':
      if (digit && f.phase === 'int') return f.digits < MAX_DIGITS ? next('int', f.digits + 1) : null;
      if (b === 0x2e && !f.integer) return next('dot');
      if ((b === 0x65 || b === 0x45) && !f.integer) return next('e');
      return endNumber(up, b);
    case 'dot':
      return digit ? next('frac', 1) : null;
    case 'frac':
      if (digit) return f.digits < MAX_DIGITS ? next('frac', f.digits + 1) : null;
      if (b === 0x65 || b === 0x45) return next('e');
      return endNumber(up, b);
    case 'e':
      if (b === 0x2b || b === 0x2d) return next('esign');
      return digit ? next('exp', 1) : null;
    case 'esign':
      return digit ? next('exp', 1) : null;
    case 'exp':
      if (digit) return f.digits < 3 ? next('exp', f.digits + 1) : null;
      return endNumber(up, b);
  }
}

function endNumber(up: JsonState | null, b: number): JsonState | null {
  const parent = valueDone(up);
  return parent ? feed(parent, b) : null;
}

function numberComplete(f: Frame): boolean {
  return f.k === 'number' && (f.phase === 'zero' || f.phase === 'int' || f.phase === 'frac' || f.phase === 'exp');
}

/** The document is complete and nothing may follow (only end of sequence). */
export function mustEnd(s: JsonState): boolean {
  return s.f.k === 'done';
}

/** The document may end here (complete, or a top-level number that could also go on). */
export function canEnd(s: JsonState): boolean {
  if (s.f.k === 'done') return true;
  if (numberComplete(s.f) || (s.f.k === 'literal' && s.f.options.includes(s.f.text))) return s.up?.f.k === 'done';
  return false;
}

/**
 * A key that identifies the state for mask caching. Counters that only matter near their limits are clamped, so that
 * e.g. every position deep inside a long free string shares one key.
 */
export function stateKey(s: JsonState, clampAt: number): string {
  const parts: string[] = [];
  for (let x: JsonState | null = s; x; x = x.up) {
    const f = x.f;
    switch (f.k) {
      case 'value': parts.push(`v${f.node.id}:${f.ws}`); break;
      // Property names and literal options are arbitrary text: JSON-encoded, so that no name can spell a separator
      // ("a,b" against "a" and "b").
      case 'object': parts.push(`o${f.node.id}:${f.phase}:${JSON.stringify(f.used)}:${f.phase === 'colon' ? JSON.stringify(f.key) : ''}:${f.ws}`); break;
      case 'array': parts.push(`a${f.node.id}:${f.phase}:${Math.min(f.count, Math.max(f.node.minItems, f.node.maxItems ?? 0))}:${f.ws}`); break;
      case 'string': {
        const min = f.node?.minLength ?? 0;
        const left = f.node?.maxLength === undefined ? -1 : Math.min(f.node.maxLength - f.len, clampAt);
        parts.push(`s${f.node?.id ?? 'k'}:${Math.min(f.len, min)}:${left}:${f.esc}:${f.cont}`);
        break;
      }
      case 'number': parts.push(`n${f.integer ? 'i' : 'f'}:${f.phase}:${Math.min(MAX_DIGITS, f.digits)}`); break;
      case 'literal': parts.push(`l${JSON.stringify(f.options)}:${JSON.stringify(f.text)}`); break;
      case 'done': parts.push('d'); break;
    }
  }
  return parts.join('/');
}
