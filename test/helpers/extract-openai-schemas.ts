// Regenerates test/fixtures/openai-schemas.json: the schemas of OpenAI's published OpenAPI document
// (github.com/openai/openai-openapi, openapi.yaml) for the responses this server mirrors, with every schema they $ref,
// so that tests check real responses against OpenAI's own description rather than our reading of it.
//   git -C openai-openapi show COMMIT:openapi.yaml > /tmp/openai.yaml
//   node bin/run-ts.js test/helpers/extract-openai-schemas.ts /tmp/openai.yaml COMMIT
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parse } from 'yaml';

/** The responses of the endpoints this server serves in OpenAI's shape (completion chunks are documented as
 * CreateCompletionResponse). */
const ROOTS = [
  'CreateCompletionResponse', 'CreateChatCompletionResponse', 'CreateChatCompletionStreamResponse', 'ListModelsResponse', 'Model',
  'CompletionUsage', 'ChatCompletionMessageToolCall', 'ErrorResponse', 'Error',
];
const REF_PREFIX = '#/components/schemas/';

const [yamlPath, commit] = process.argv.slice(2);
if (!yamlPath || !/^[0-9a-f]{40}$/.test(commit ?? '')) {
  console.error('usage: extract-openai-schemas.ts OPENAPI_YAML COMMIT (the 40-hex commit of openai/openai-openapi it was taken from)');
  process.exit(2);
}
const doc = parse(readFileSync(yamlPath, 'utf8'), { maxAliasCount: -1 });
const all: Record<string, unknown> = doc.components.schemas;

const refsIn = (value: unknown): string[] => {
  if (Array.isArray(value)) return value.flatMap(refsIn);
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === '$ref' && typeof v === 'string' ? [v] : refsIn(v)));
};

const picked = new Map<string, unknown>();
const queue = [...ROOTS];
while (queue.length > 0) {
  const name = queue.shift()!;
  if (picked.has(name)) continue;
  if (!(name in all)) throw new Error(`${name} is not in ${yamlPath}'s components.schemas`);
  // x-oaiMeta holds the reference site's prose and example payloads: no part of the schema.
  const { 'x-oaiMeta': _meta, ...schema } = all[name] as Record<string, unknown>;
  picked.set(name, schema);
  for (const ref of refsIn(schema)) {
    if (!ref.startsWith(REF_PREFIX)) throw new Error(`${name}: $ref ${ref} is outside components.schemas`);
    queue.push(ref.slice(REF_PREFIX.length));
  }
}

const fixture = {
  source: {
    repository: 'https://github.com/openai/openai-openapi', path: 'openapi.yaml', commit,
    openapi: doc.openapi, version: doc.info.version, omitted: 'x-oaiMeta (the reference site\'s examples)',
  },
  schemas: Object.fromEntries([...picked].sort(([a], [b]) => a.localeCompare(b))),
};
const out = resolve(import.meta.dirname, '../fixtures/openai-schemas.json');
writeFileSync(out, `${JSON.stringify(fixture, null, 2)}\n`);
console.log(`${out}: ${picked.size} schemas from ${commit}`);
