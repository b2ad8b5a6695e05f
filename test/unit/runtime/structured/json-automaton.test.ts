import { describe, expect, it } from 'vitest';
import { compileSchema, SchemaError } from '../../../../src/runtime/structured/json-schema.ts';
import { canEnd, feed, initialState, mustEnd, type JsonState } from '../../../../src/runtime/structured/json-automaton.ts';

function run(schema: unknown, text: string): JsonState | null {
  let s: JsonState | null = initialState(compileSchema(schema));
  for (const b of Buffer.from(text, 'utf8')) {
    s = feed(s!, b);
    if (!s) return null;
  }
  return s;
}
const accepts = (schema: unknown, text: string) => {
  const s = run(schema, text);
  return s !== null && canEnd(s);
};
const prefixOk = (schema: unknown, text: string) => run(schema, text) !== null;

const person = {
  type: 'object', additionalProperties: false, required: ['name', 'age'],
  properties: { name: { type: 'string', maxLength: 5 }, age: { type: 'integer' }, tags: { type: 'array', items: { enum: ['a', 'b'] }, maxItems: 2 } },
};

describe('JSON automaton', () => {
  it('lets free documents nest only as deep as schemas may (32 levels)', () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    expect(accepts({ type: 'array' }, deep(33))).toBe(true);
    expect(prefixOk({ type: 'array' }, deep(34).slice(0, 34))).toBe(false);
    expect(prefixOk({ type: 'object' }, '{"a":'.repeat(40))).toBe(false);
    expect(prefixOk({ type: 'object' }, '{"a":'.repeat(33))).toBe(true);
  });

  it.each([
    [person, '{"name":"Bo","age":3}', true],
    [person, '{ "age": -12, "name": "Al" }', true],
    [person, '{"name":"Bo","age":3,"tags":["a","b"]}', true],
    [person, '{"name":"Bo"}', false], // required age missing
    [person, '{"name":"Bo","age":3.5}', false], // integer
    [person, '{"name":"Bobby!","age":3}', false], // maxLength 5
    [person, '{"name":"Bo","age":3,"tags":["a","b","a"]}', false], // maxItems
    [person, '{"name":"Bo","age":3,"tags":["c"]}', false], // enum
    [person, '{"name":"Bo","age":3,"x":1}', false], // additional property
    [person, '{"name":"Bo","name":"Al","age":1}', false], // a property twice
    [person, '{"name":"Bo",}', false],
    [{ type: 'object' }, '{"any":[1,{"deep":null}],"b":"\\u00e9\\n"}', true],
    [{ type: 'object' }, '[1]', false],
    [{ type: 'array', items: { type: 'number' }, minItems: 1 }, '[]', false],
    [{ type: 'array', items: { type: 'number' } }, '[1e5, -0.25, 0, 12E-3]', true],
    [{ type: 'number' }, '01', false],
    [{ enum: [1, 12, 'x', null] }, '12', true],
    [{ enum: [1, 12, 'x', null] }, '1', true],
    [{ enum: [1, 12, 'x', null] }, '13', false],
    [{ const: true }, 'true', true],
    [{ type: ['string', 'null'] }, 'null', true],
    [{ type: 'string', minLength: 2 }, '"a"', false],
    [{ type: 'string' }, '"héllo ☃"', true],
    [{ type: 'string' }, '"tab\there"', false], // raw control characters must be escaped
  ])('%j on %j -> %s', (schema, text, ok) => {
    expect(accepts(schema, text)).toBe(ok);
  });

  it('keeps strings valid UTF-8: continuation bytes only where a lead byte announced them', () => {
    const str = { type: 'string', maxLength: 3 };
    const bytes = (...b: number[]) => {
      let st: JsonState | null = initialState(compileSchema(str));
      for (const x of [0x22, ...b]) st = st && feed(st, x);
      return st;
    };
    expect(bytes(0xe2, 0x98, 0x83, 0x22)).not.toBeNull(); // ☃
    expect(bytes(0x98)).toBeNull(); // a lone continuation byte
    expect(bytes(0xe2, 0x22)).toBeNull(); // a quote inside a character
    expect(bytes(0xc0)).toBeNull(); // overlong lead
    expect(bytes(0x61, 0x62, 0x63, 0x64)).toBeNull(); // maxLength counts characters
    expect(bytes(0xe2, 0x98, 0x83, 0x61, 0x62, 0x22)).not.toBeNull();
  });

  it('allows at most one whitespace byte between tokens', () => {
    expect(prefixOk(person, '{ "name"')).toBe(true);
    expect(prefixOk(person, '{  "name"')).toBe(false);
  });

  it('a complete object must end; a top-level number may go on', () => {
    expect(mustEnd(run(person, '{"name":"Bo","age":3}')!)).toBe(true);
    const n = run({ type: 'integer' }, '12')!;
    expect(canEnd(n) && !mustEnd(n)).toBe(true);
    expect(feed(n, 0x33)).not.toBeNull();
  });

  it('bounds number length so generation terminates', () => {
    expect(prefixOk({ type: 'integer' }, '1'.repeat(16))).toBe(true);
    expect(prefixOk({ type: 'integer' }, '1'.repeat(17))).toBe(false);
  });

  it.each([
    [{ type: 'string', pattern: 'a+' }, /keyword "pattern" \(at \/pattern\)/],
    [{ anyOf: [{ type: 'string' }] }, /"anyOf"/],
    [{ type: 'object', properties: { a: { $ref: '#/x' } } }, /"\$ref" \(at \/properties\/a\/\$ref\)/],
    [{ type: 'integer', minimum: 3 }, /"minimum"/],
    [{ type: 'date' }, /unsupported type "date"/],
    [{ type: 'object', properties: {}, required: ['x'] }, /required property "x" is not in properties/],
  ])('refuses %j naming the feature', (schema, message) => {
    expect(() => compileSchema(schema)).toThrow(SchemaError);
    expect(() => compileSchema(schema)).toThrow(message);
  });
});
