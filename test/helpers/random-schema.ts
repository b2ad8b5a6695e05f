// Random JSON schemas (seeded) over what XGrammar supports: pattern, anyOf, $ref/$defs, minimum/maximum besides types,
// enums and lengths, bounded so that a generation under them can terminate.
import { Xoshiro128 } from '../../src/runtime/rng.ts';

export function randomSchema(seed: number): Record<string, unknown> {
  const rng = new Xoshiro128(seed);
  const pick = <T>(xs: T[]): T => xs[Math.floor(rng.next() * xs.length)];
  const int = (lo: number, hi: number) => lo + Math.floor(rng.next() * (hi - lo + 1));
  const scalar = (): Record<string, unknown> => pick<() => Record<string, unknown>>([
    () => ({ type: 'string', maxLength: int(1, 10) }),
    () => ({ type: 'string', minLength: 1, maxLength: int(2, 8) }),
    () => ({ type: 'integer' }),
    () => ({ type: 'number' }),
    () => ({ type: 'boolean' }),
    () => ({ type: 'null' }),
    () => ({ enum: ['red', 'green', 'blue'].slice(0, int(1, 3)) }),
    () => ({ enum: [1, 2, 12, 'x', null] }),
    () => ({ const: 'fixed' }),
    () => ({ type: ['string', 'null'], maxLength: 4 }),
    () => ({ type: 'string', pattern: pick(['^[a-z]{1,6}$', '^[A-Z][0-9]{2}$', '^(yes|no)$']) }),
    () => ({ type: 'integer', minimum: int(-5, 5), maximum: int(6, 99) }),
    () => ({ anyOf: [{ type: 'integer', minimum: 1, maximum: 9 }, { type: 'string', maxLength: 3 }] }),
    () => ({ $ref: '#/$defs/point' }),
  ])();
  const value = (depth: number): Record<string, unknown> => {
    const r = rng.next();
    if (depth > 0 && r < 0.2) return object(depth - 1);
    if (r < 0.35) {
      const maxItems = int(0, 3);
      return { type: 'array', items: depth > 0 && rng.next() < 0.3 ? object(depth - 1) : scalar(), minItems: int(0, maxItems), maxItems };
    }
    return scalar();
  };
  const object = (depth: number): Record<string, unknown> => {
    const names = ['name', 'age', 'city', 'tags', 'ok', 'id', 'info'].filter(() => rng.next() < 0.6).slice(0, 4);
    if (names.length === 0) names.push('id');
    const properties = Object.fromEntries(names.map((n) => [n, value(depth)]));
    return { type: 'object', properties, required: names.filter(() => rng.next() < 0.7), additionalProperties: false };
  };
  const point = { type: 'object', properties: { x: { type: 'integer' }, y: { type: 'integer' } }, required: ['x', 'y'], additionalProperties: false };
  return { ...object(2), $defs: { point } };
}
