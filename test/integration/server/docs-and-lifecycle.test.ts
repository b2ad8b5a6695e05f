// OpenAPI document and Swagger UI; /health while loading; client disconnects cancel their work.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import SwaggerParser from '@apidevtools/swagger-parser';
import { buildApp } from '../../../src/server/app.ts';
import { DEFAULTS } from '../../../src/server/config.ts';
import { Metrics } from '../../../src/server/metrics.ts';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { waitFor } from '../../helpers/wait.ts';

describe('docs and lifecycle', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: 1024 }), draft: 'ngram' });
  });
  afterAll(() => server.close());

  it('/docs/json is a valid OpenAPI 3 document listing the routes; /docs serves Swagger UI', async () => {
    const doc = await (await fetch(`${server.url}/docs/json`)).json();
    expect(doc.openapi).toMatch(/^3\./);
    await SwaggerParser.validate(structuredClone(doc));
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/v1/completions', '/v1/chat/completions', '/v1/models', '/health', '/metrics']));
    const html = await (await fetch(`${server.url}/docs/`)).text();
    expect(html).toMatch(/swagger-ui/i);
  });

  it('/health is 503 in OpenAI shape until models are loaded', async () => {
    const app = await buildApp({ config: { ...DEFAULTS }, metrics: new Metrics(), served: () => null });
    const r = await app.inject({ method: 'GET', url: '/health' });
    expect(r.statusCode).toBe(503);
    expect(r.json().error.code).toBe('not_ready');
    await app.close();
  });

  it('a client that disconnects (streamed or not) cancels its generation and frees its cache', async () => {
    const body = (stream: boolean) => JSON.stringify({ model: 'model', prompt: 'a b c', max_tokens: 1000, ignore_eos: true, stream });
    for (const stream of [true, false]) {
      const controller = new AbortController();
      const response = fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
        body: body(stream), signal: controller.signal });
      if (stream) {
        // A streamed token proves the generation is under way.
        await (await response).body!.getReader().read();
      } else {
        response.catch(() => null);
        // 1000 tokens keep it running long after the engine reports it.
        await waitFor(() => server.served.engine.numRunning === 1);
      }
      controller.abort();
      await waitFor(() => server.served.engine.numRunning === 0 && server.served.engine.numWaiting === 0 && server.served.engine.kvBytes === 0);
    }
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^specserve_num_requests_running 0$/m);
    expect(metrics).toMatch(/^specserve_kv_cache_usage_bytes 0$/m);
  });
});
