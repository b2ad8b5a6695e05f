// GET /v1/models, /health and /metrics.
import type { FastifyInstance } from 'fastify';
import { errors } from './errors.ts';
import type { Metrics } from './metrics.ts';
import type { ServedModel } from './served-model.ts';
import { errorResponses, okResponse } from './response-schemas.ts';

export function registerInfoRoutes(app: FastifyInstance, served: () => ServedModel | null, metrics: Metrics): void {
  app.get('/v1/models', {
    schema: {
      summary: 'List models', operationId: 'listModels', tags: ['OpenAI'],
      response: { 200: okResponse('ListModelsResponse', 'The served model'), ...errorResponses(401, 503) },
    },
  }, async () => {
    const m = served();
    if (!m) throw errors.modelsLoading();
    return {
      object: 'list',
      data: [{ id: m.name, object: 'model', created: m.created, owned_by: 'specserve', root: m.name, max_model_len: m.maxModelLen, ...m.description }],
    };
  });

  app.get('/health', {
    config: { access: 'health' },
    schema: {
      summary: '200 once models are loaded, 503 before', operationId: 'health', tags: ['Operations'],
      response: { 200: okResponse('HealthResponse', 'Ready'), ...errorResponses(401, 503) },
    },
  }, async (_req, reply) => {
    const m = served();
    if (!m) throw errors.modelsLoading();
    if (!m.engine.healthy) throw errors.engineRestarting();
    reply.header('cache-control', 'no-store');
    return { status: 'ok' };
  });

  app.get('/metrics', {
    config: { access: 'metrics' },
    schema: {
      summary: 'Prometheus metrics', operationId: 'metrics', tags: ['Operations'],
      response: { 200: { description: 'The Prometheus text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errorResponses(401) },
    },
  }, async (_req, reply) => {
    const m = served();
    const text = await metrics.render({
      running: m?.engine.numRunning ?? 0, waiting: m?.engine.numWaiting ?? 0, kvBytes: m?.engine.kvBytes ?? 0,
    });
    reply.header('content-type', metrics.contentType);
    return text;
  });
}
