// The OpenAPI document at /docs/json against the real server (stories260K + draft): every operation is named and
// describes its responses; the example of each request body, taken as Swagger UI's "Try it out" takes it, is answered
// 200; and real responses of every endpoint, streamed chunks and errors included, validate against the document's
// own schemas (ajv, $refs resolved in its components). The response schemas admit no undocumented field, so a field
// added to a response without its description fails here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import SwaggerParser from '@apidevtools/swagger-parser';
import { buildApp } from '../../../src/server/app.ts';
import { DEFAULTS } from '../../../src/server/config.ts';
import { Metrics } from '../../../src/server/metrics.ts';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { storiesDraftModel, storiesModel } from '../../helpers/model-fixtures.ts';
import { requireSharedModels } from '../../helpers/shared-models.ts';
import { collectSamples, sample, type ApiSample } from '../../helpers/api-samples.ts';

requireSharedModels('the OpenAPI document against real responses');

/** A JSON pointer's segment (RFC 6901). */
const pointer = (...segments: string[]) => segments.map((s) => `/${s.replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

/** Validates bodies against the document's response schemas, by route, status and media type. */
function documentValidator(doc: any) {
  // The document itself is the schema resource: '#/components/schemas/X' in a response schema resolves inside it.
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true, validateSchema: false });
  ajv.addSchema(doc, 'openapi.json');
  return (s: Pick<ApiSample, 'path' | 'method' | 'status' | 'mediaType' | 'body'>) => {
    const at = pointer('paths', s.path, s.method.toLowerCase(), 'responses', String(s.status), 'content', s.mediaType, 'schema');
    const validate = ajv.getSchema(`openapi.json#${at}`);
    if (!validate) throw new Error(`the document describes no ${s.mediaType} ${s.status} response of ${s.method} ${s.path}`);
    return validate(s.body) ? null : ajv.errorsText(validate.errors, { dataVar: 'body' });
  };
}

/** The body Swagger UI's "Try it out" starts from: the media type's first named example, else its example (else it
 * would generate one from the schema, which the test refuses: the document must give one). */
function tryItOutBody(operation: any): unknown {
  const media = operation.requestBody.content['application/json'];
  if (media.examples) return Object.values<{ value: unknown }>(media.examples)[0].value;
  return media.example;
}

describe('the OpenAPI document (stories260K + draft)', () => {
  let server: TestServer;
  let doc: any;
  let samples: ApiSample[];
  let check: ReturnType<typeof documentValidator>;
  beforeAll(async () => {
    server = await startServer({ target: storiesModel(), draft: storiesDraftModel(), numSpeculativeTokens: 4 });
    doc = await (await fetch(`${server.url}/docs/json`)).json();
    check = documentValidator(doc);
    samples = await collectSamples(server.url);
  });
  afterAll(() => server.close());

  const operations = () => Object.entries<any>(doc.paths).flatMap(([path, item]) => Object.entries<any>(item).map(([method, op]) => ({ path, method, op })));

  it('is valid OpenAPI; every operation has a unique operationId and a described 200; shared parts are components', async () => {
    await SwaggerParser.validate(structuredClone(doc));
    const ids = operations().map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { path, method, op } of operations()) expect(Object.keys(op.responses[200].content ?? {}), `${method} ${path}`).not.toEqual([]);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining([
      'CompletionUsage', 'CompletionLogprobs', 'ChatCompletionLogprobs', 'ChatCompletionMessageToolCall', 'Error', 'ErrorResponse',
      'CompletionChunk', 'ChatCompletionChunk',
    ]));
    const chat = doc.paths['/v1/chat/completions'].post.responses;
    expect(chat[200].content['text/event-stream'].schema).toEqual({ $ref: '#/components/schemas/ChatCompletionChunk' });
    expect(chat[400].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ErrorResponse' });
    expect(doc.components.schemas.CreateChatCompletionResponse.properties.usage).toEqual({ $ref: '#/components/schemas/CompletionUsage' });
  });

  it('the request body example of every operation that takes one, sent as Swagger UI\'s "Try it out" sends it, is answered 200', async () => {
    const withBody = operations().filter((o) => o.op.requestBody);
    expect(withBody.map((o) => o.path).sort()).toEqual(['/detokenize', '/tokenize', '/v1/chat/completions', '/v1/completions']);
    for (const { path, op } of withBody) {
      const body = tryItOutBody(op);
      expect(body, `${path} has no example`).toBeTypeOf('object');
      const [answer] = await sample(server.url, { name: `${path}'s example`, method: 'POST', path, body });
      expect(answer.status, `${path}: ${JSON.stringify(answer.body)}`).toBe(200);
      expect(check(answer)).toBeNull();
    }
  });

  it('real responses of every endpoint, streamed chunks and errors included, validate against the document', () => {
    // The samples bring out every optional part of the shapes.
    const bodies = samples.map((s) => s.body);
    expect(bodies.some((b) => b.choices?.[0]?.message?.tool_calls)).toBe(true);
    expect(bodies.some((b) => b.choices?.[0]?.delta?.tool_calls)).toBe(true);
    expect(bodies.some((b) => b.choices?.[0]?.logprobs?.content)).toBe(true);
    expect(bodies.some((b) => b.choices?.[0]?.logprobs?.tokens)).toBe(true);
    expect(bodies.some((b) => b.object === 'text_completion' && b.choices.length === 0 && b.usage)).toBe(true);
    expect(new Set(samples.map((s) => `${s.method} ${s.path}`))).toEqual(new Set(operations().filter((o) => o.path !== '/metrics').map((o) => `${o.method.toUpperCase()} ${o.path}`)));
    const failures = samples.map((s) => [s.name, check(s)]).filter(([, error]) => error !== null);
    expect(failures).toEqual([]);
    // And the check bites: an undocumented field, or a $ref'd part (usage) missing its fields, fails.
    const completion = samples.find((s) => s.path === '/v1/completions' && s.mediaType === 'application/json')!;
    expect(check({ ...completion, body: { ...completion.body, extra: 1 } })).toMatch(/must NOT have additional properties/);
    expect(check({ ...completion, body: { ...completion.body, usage: {} } })).toMatch(/body\/usage must have required property/);
  });

  it('response schemas do not serialize: a property a schema lacks is still sent, and no type is coerced', async () => {
    // Fastify's default would compile the schema into fast-json-stringify, which drops b and sends a as 1.
    const app = await buildApp({ config: { ...DEFAULTS }, metrics: new Metrics(), served: () => null });
    app.get('/probe', { schema: { response: { 200: { type: 'object', properties: { a: { type: 'integer' } } } } } }, async () => ({ a: '1', b: 2 }));
    expect((await app.inject({ method: 'GET', url: '/probe' })).body).toBe('{"a":"1","b":2}');
    await app.close();
  });

  it('a 503 while the models load validates against its documented schema', async () => {
    const app = await buildApp({ config: { ...DEFAULTS }, metrics: new Metrics(), served: () => null });
    for (const path of ['/health', '/v1/models']) {
      const r = await app.inject({ method: 'GET', url: path });
      expect(r.statusCode).toBe(503);
      expect(check({ path, method: 'GET', status: 503, mediaType: 'application/json', body: r.json() })).toBeNull();
    }
    await app.close();
  });
});
