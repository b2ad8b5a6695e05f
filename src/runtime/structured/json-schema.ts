// The JSON Schema subset that constrained decoding supports, compiled to a small tree the automaton walks.
// Supported: type (one or several of object, array, string, number, integer, boolean, null), properties, required,
// additionalProperties (false, true or absent: only listed properties are generated, which every such schema
// accepts), enum, const, items, minItems, maxItems, minLength, maxLength, and annotations (title, description,
// default, examples, $schema, $id, strict). Anything else is refused with the keyword's path.

export type JsonType = 'object' | 'array' | 'string' | 'number' | 'integer' | 'boolean' | 'null';
const TYPES: JsonType[] = ['object', 'array', 'string', 'number', 'integer', 'boolean', 'null'];

export interface SchemaNode {
  id: number;
  types: Set<JsonType>;
  /** enum / const: the allowed values, serialized as JSON (the model must write exactly one of them). */
  literals?: string[];
  /** object: property name -> schema; absent means any properties with any values (json_object mode). */
  properties?: Map<string, SchemaNode>;
  required: Set<string>;
  items?: SchemaNode;
  minItems: number;
  maxItems?: number;
  minLength: number;
  maxLength?: number;
}

const ANNOTATIONS = new Set(['title', 'description', 'default', 'examples', '$schema', '$id', 'strict', '$comment']);
const SUPPORTED = new Set(['type', 'properties', 'required', 'additionalProperties', 'enum', 'const', 'items', 'minItems',
  'maxItems', 'minLength', 'maxLength', ...ANNOTATIONS]);

/** Schemas nest at most this deep (objects in objects, items in items): compiling and matching recurse per level, and
 * a schema of thousands of levels would exhaust the stack. Documents nest at most as deep (json-automaton.ts). */
export const MAX_SCHEMA_DEPTH = 32;

export class SchemaError extends Error {
  constructor(readonly path: string, message: string) {
    super(`${message} (at ${path || '/'})`);
  }
}

/** Any JSON value (values of free objects, unconstrained items); its arrays hold any values too. */
export const ANY_VALUE: SchemaNode = { id: -1, types: new Set(TYPES), required: new Set(), minItems: 0, minLength: 0 };
ANY_VALUE.items = ANY_VALUE;

export function compileSchema(schema: unknown): SchemaNode {
  let nextId = 0;
  const anyValue = (): SchemaNode => ANY_VALUE;

  const compile = (s: unknown, path: string, depth = 0): SchemaNode => {
    if (depth > MAX_SCHEMA_DEPTH) throw new SchemaError(path.slice(0, 200), `schemas may nest at most ${MAX_SCHEMA_DEPTH} levels`);
    if (s === true || (typeof s === 'object' && s !== null && !Array.isArray(s) && Object.keys(s).every((k) => ANNOTATIONS.has(k)))) {
      return anyValue();
    }
    if (typeof s !== 'object' || s === null || Array.isArray(s)) throw new SchemaError(path, 'a schema must be an object');
    const o = s as Record<string, unknown>;
    for (const key of Object.keys(o)) {
      if (!SUPPORTED.has(key)) throw new SchemaError(`${path}/${key}`, `unsupported JSON schema keyword "${key}"`);
    }
    const node: SchemaNode = { id: nextId++, types: new Set(), required: new Set(), minItems: 0, minLength: 0 };
    if (o.type !== undefined) {
      const list = Array.isArray(o.type) ? o.type : [o.type];
      for (const t of list) {
        if (!TYPES.includes(t as JsonType)) throw new SchemaError(`${path}/type`, `unsupported type ${JSON.stringify(t)}`);
        node.types.add(t as JsonType);
      }
    }
    const literals = o.const !== undefined ? [o.const] : o.enum;
    if (literals !== undefined) {
      if (!Array.isArray(literals) || literals.length === 0) throw new SchemaError(`${path}/enum`, 'enum must be a non-empty array');
      node.literals = [...new Set(literals.map((v) => JSON.stringify(v)))];
      if (node.types.size === 0) for (const t of TYPES) node.types.add(t);
      return node;
    }
    if (node.types.size === 0) {
      if (o.properties !== undefined) node.types.add('object');
      else if (o.items !== undefined) node.types.add('array');
      else for (const t of TYPES) node.types.add(t);
    }
    if (node.types.has('object')) {
      if (o.properties !== undefined) {
        if (typeof o.properties !== 'object' || o.properties === null) throw new SchemaError(`${path}/properties`, 'properties must be an object');
        node.properties = new Map(Object.entries(o.properties).map(([k, v]) => [k, compile(v, `${path}/properties/${k}`, depth + 1)]));
      }
      if (o.additionalProperties !== undefined && typeof o.additionalProperties !== 'boolean') {
        throw new SchemaError(`${path}/additionalProperties`, 'only additionalProperties true or false is supported');
      }
      if (o.required !== undefined) {
        if (!Array.isArray(o.required)) throw new SchemaError(`${path}/required`, 'required must be an array');
        for (const r of o.required) {
          if (node.properties && !node.properties.has(r)) throw new SchemaError(`${path}/required`, `required property "${r}" is not in properties`);
          node.required.add(r);
        }
      }
      if (!node.properties && node.required.size > 0) node.properties = new Map([...node.required].map((r) => [r, anyValue()]));
    }
    if (node.types.has('array')) node.items = o.items === undefined ? anyValue() : compile(o.items, `${path}/items`, depth + 1);
    const count = (key: string): number | undefined => {
      const v = o[key];
      if (v === undefined) return undefined;
      if (!Number.isInteger(v) || (v as number) < 0) throw new SchemaError(`${path}/${key}`, `${key} must be a non-negative integer`);
      return v as number;
    };
    node.minItems = count('minItems') ?? 0;
    node.maxItems = count('maxItems');
    node.minLength = count('minLength') ?? 0;
    node.maxLength = count('maxLength');
    if (node.maxItems !== undefined && node.maxItems < node.minItems) throw new SchemaError(path, 'maxItems is below minItems');
    if (node.maxLength !== undefined && node.maxLength < node.minLength) throw new SchemaError(path, 'maxLength is below minLength');
    return node;
  };
  return compile(schema, '');
}
