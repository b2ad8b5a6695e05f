// Real responses of the OpenAI endpoints (completions and chat, whole and streamed chunk by chunk, models, errors) on
// stories260K + draft validate against OpenAI's own published schemas (test/fixtures/openai-schemas.json, extracted
// from github.com/openai/openai-openapi by test/helpers/extract-openai-schemas.ts), not against our reading of them.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';
import { collectSamples, type ApiSample } from '../../helpers/api-samples.ts';

requireSharedModels("responses against OpenAI's schemas");

const fixture = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../fixtures/openai-schemas.json'), 'utf8'));

/** OpenAI's document is OpenAPI 3.1 (JSON Schema 2020-12) yet keeps 3.0's `nullable: true` in places (the chat
 * chunk's finish_reason and logprobs, its usage): here as the `null` type it means. */
function withNullTypes(schema: any): any {
  if (Array.isArray(schema)) return schema.map(withNullTypes);
  if (schema === null || typeof schema !== 'object') return schema;
  // A boolean only: `nullable` may also be the name of a property, whose value is a schema.
  const isNullable = schema.nullable === true;
  const out = Object.fromEntries(Object.entries(schema).filter(([k, v]) => !(k === 'nullable' && typeof v === 'boolean')).map(([k, v]) => [k, withNullTypes(v)]));
  if (!isNullable) return out;
  if (out.$ref) {
    const { $ref, ...rest } = out;
    return { ...rest, anyOf: [{ $ref }, { type: 'null' }] };
  }
  if (out.type) out.type = [...[out.type].flat(), 'null'];
  if (Array.isArray(out.enum)) out.enum = [...out.enum, null];
  return out;
}

const schemas = withNullTypes(fixture.schemas);
// OpenAI documents completion chunks as CreateCompletionResponse ("both the streamed and non-streamed response objects
// share the same shape"), whose choices' finish_reason is a string; its live API sends null in every chunk of a choice
// but the last, as this server does. That one field is relaxed, for chunks only.
schemas.CompletionStreamChunk = structuredClone(schemas.CreateCompletionResponse);
const chunkChoice = schemas.CompletionStreamChunk.properties.choices.items.properties;
chunkChoice.finish_reason = { anyOf: [chunkChoice.finish_reason, { type: 'null' }] };

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
// As a document, so that the schemas' own '#/components/schemas/X' references resolve.
ajv.addSchema({ components: { schemas } }, 'openai');
const validator = (name: string) => ajv.getSchema(`openai#/components/schemas/${name}`)!;

const OPENAI_SCHEMA_OF: Record<string, string> = {
  'POST /v1/completions application/json': 'CreateCompletionResponse',
  'POST /v1/completions text/event-stream': 'CompletionStreamChunk',
  'POST /v1/chat/completions application/json': 'CreateChatCompletionResponse',
  'POST /v1/chat/completions text/event-stream': 'CreateChatCompletionStreamResponse',
  'GET /v1/models application/json': 'ListModelsResponse',
};

/** The OpenAI schema of a response; undefined for this server's own endpoints (tokenize, health). */
function openaiSchemaOf(s: ApiSample): string | undefined {
  return s.status !== 200 ? 'ErrorResponse' : OPENAI_SCHEMA_OF[`${s.method} ${s.path} ${s.mediaType}`];
}

describe("OpenAI's published schemas (stories260K + draft)", () => {
  let server: TestServer;
  let samples: ApiSample[];
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), numSpeculativeTokens: 4 });
    samples = await collectSamples(server.url);
  });
  afterAll(() => server.close());

  it('the fixture names the commit of openai/openai-openapi it was taken from', () => {
    expect(fixture.source).toMatchObject({ repository: 'https://github.com/openai/openai-openapi', path: 'openapi.yaml', commit: expect.stringMatching(/^[0-9a-f]{40}$/) });
  });

  it('every response of an OpenAI endpoint, each streamed chunk and each error, validates against OpenAI\'s schema', () => {
    const checked = samples.filter((s) => openaiSchemaOf(s) !== undefined);
    expect(new Set(checked.map(openaiSchemaOf))).toEqual(new Set([
      'CreateCompletionResponse', 'CompletionStreamChunk', 'CreateChatCompletionResponse', 'CreateChatCompletionStreamResponse', 'ListModelsResponse', 'ErrorResponse',
    ]));
    const failures = checked.flatMap((s) => {
      const validate = validator(openaiSchemaOf(s)!);
      return validate(s.body) ? [] : [[s.name, ajv.errorsText(validate.errors, { dataVar: 'body' })]];
    });
    expect(failures).toEqual([]);
  });

  it('the shared parts validate on their own: usage, a tool call, the model, the error', () => {
    const bodies = samples.map((s) => s.body);
    const call = bodies.find((b) => b.choices?.[0]?.message?.tool_calls)!.choices[0].message.tool_calls[0];
    expect(validator('ChatCompletionMessageToolCall')(call)).toBe(true);
    expect(validator('CompletionUsage')(bodies.find((b) => b.usage)!.usage)).toBe(true);
    expect(validator('Model')(bodies.find((b) => b.object === 'list')!.data[0])).toBe(true);
    expect(validator('Error')(bodies.find((b) => b.error)!.error)).toBe(true);
  });

  it('the relaxation is needed, and is all that is relaxed: completion chunks fail the unrelaxed schema at finish_reason only', () => {
    const chunks = samples.filter((s) => openaiSchemaOf(s) === 'CompletionStreamChunk' && s.body.choices.length > 0);
    const strict = validator('CreateCompletionResponse');
    const failedAt = new Set(chunks.flatMap((s) => (strict(s.body) ? [] : strict.errors!.map((e) => e.instancePath))));
    expect(failedAt).toEqual(new Set(['/choices/0/finish_reason']));
    expect(chunks.filter((s) => s.body.choices[0].finish_reason !== null).every((s) => strict(s.body))).toBe(true);
  });
});
