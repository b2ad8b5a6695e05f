// The composition root: the Fastify app (error handling, auth, swagger, routes) and the wiring of models,
// proposers and engine behind it.
import Fastify, { LogController, type FastifyInstance, type FastifyError, type FastifyReply } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { createHash, timingSafeEqual } from 'node:crypto';
import { basename } from 'node:path';
import { TextTokenizer } from '../runtime/tokenizer.ts';
import type { EngineHooks } from '../speculative/engine.ts';
import type { ServerConfig } from './config.ts';
import { errors, toApiError } from './errors.ts';
import { Metrics } from './metrics.ts';
import { chatRenderer } from './chat-template.ts';
import { openEngine } from './model-loading.ts';
import { RemoteEngine } from './remote-engine.ts';
import { registerCompletions } from './completions-route.ts';
import { registerChat } from './chat-route.ts';
import { registerInfoRoutes } from './info-routes.ts';
import { registerTokenizeRoutes } from './tokenize-routes.ts';
import type { ServedModel } from './served-model.ts';
import { componentSchemas } from './response-schemas.ts';

const VERSION = '0.1.0';

/** A route's `config.access`: public always, or public as --public-health / --public-metrics say; absent: the API key
 * is required (when one is set). */
export type RouteAccess = 'public' | 'health' | 'metrics';
declare module 'fastify' {
  interface FastifyContextConfig {
    access?: RouteAccess;
  }
}

export interface AppOptions {
  config: ServerConfig;
  metrics: Metrics;
  served: () => ServedModel | null;
  logger?: boolean | object;
  /** Set `draining` to answer every further request with a clean 503 and `connection: close` (shutdown). */
  lifecycle?: { draining: boolean };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

export async function buildApp(o: AppOptions): Promise<FastifyInstance> {
  const { config } = o;
  const app = Fastify({
    logger: o.logger ?? false,
    // One line per request is noise at load; failures are logged by the error handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.bodyLimitBytes,
    return503OnClosing: false, // answered below, in OpenAI's shape
    forceCloseConnections: 'idle',
    // verbose: a failed anyOf carries its schema, whose title names the accepted shapes.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, useDefaults: false, verbose: true } },
    // Errors Fastify raises before routing (a URL that does not decode, say) in OpenAI's shape too.
    frameworkErrors: (err, _req, reply) => {
      const e = toApiError(err);
      void (reply as FastifyReply).code(e.status).send(e.toJSON());
    },
  });

  // Only JSON is accepted (OpenAI's API is JSON-only): other media types get 415, not a confusing schema error.
  app.removeContentTypeParser('text/plain');
  // JSON bodies must be valid UTF-8 (JSON.parse alone would turn bad bytes into U+FFFD silently).
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return done(errors.notUtf8());
    }
    if (text.trim() === '') return done(errors.emptyBody());
    try {
      const value = JSON.parse(text);
      if (value === null || typeof value !== 'object' || Array.isArray(value)) return done(errors.notAnObject());
      done(null, value);
    } catch (err) {
      done(errors.badJson((err as Error).message));
    }
  });

  // Response schemas document the API (and are the tests' contract); they do not serialize it. Fastify would compile
  // them into fast-json-stringify serializers, which drop any property a schema lacks and coerce types to the
  // schema's: a slip in a schema would then change what clients receive, silently. JSON.stringify sends what the
  // route built.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  for (const schema of componentSchemas) app.addSchema(schema);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    const e = toApiError(err, config.bodyLimitBytes);
    if (e.code === 'server_error') req.log.error({ err }, 'request failed');
    reply.code(e.status).headers(e.headers).send(e.toJSON());
  });
  // A known path asked with another method is a 405 naming the methods it takes (as OpenAI answers), not a 404.
  const methodsByPath = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    for (const m of [route.method].flat()) {
      if (m !== 'HEAD') methodsByPath.set(route.url, (methodsByPath.get(route.url) ?? new Set()).add(m));
    }
  });
  app.setNotFoundHandler((req, reply) => {
    const allowed = methodsByPath.get(req.url.split('?')[0]);
    const e = allowed ? errors.methodNotAllowed(req.method, req.url.split('?')[0], [...allowed].join(', ')) : errors.unknownRoute(req.method, req.url);
    reply.code(e.status).headers(e.headers).send(e.toJSON());
  });
  // Every response counted by the route it matched (4xx included: invisible in the engine's metrics).
  app.addHook('onResponse', async (req, reply) => {
    const path = req.url.split('?')[0];
    const route = req.routeOptions.url ?? (methodsByPath.has(path) ? path : 'unmatched');
    o.metrics.httpResponses.inc({ route, status: String(reply.statusCode) });
  });

  // During shutdown, requests on still-open keep-alive connections get a clean 503, and every response tells the
  // client to close its connection, so that none is reused while the server closes idle ones.
  const lifecycle = o.lifecycle ?? { draining: false };
  app.addHook('preClose', async () => {
    lifecycle.draining = true;
  });
  app.addHook('onRequest', async (_req, reply) => {
    if (!lifecycle.draining) return;
    reply.header('connection', 'close');
    throw errors.shuttingDown();
  });
  app.addHook('onSend', async (_req, reply) => {
    if (lifecycle.draining) reply.header('connection', 'close');
  });

  // API keys: decided by the route the router matched (its config), never by the raw URL, which a client can spell
  // in ways the router decodes (percent-encoding, doubled slashes): every route is protected unless it says it is
  // public, and so are unknown routes (401 before 404: nothing is probed without the key).
  app.addHook('onRoute', (route) => {
    // @fastify/swagger-ui's routes: the API's description is public, as vLLM's /docs is.
    if (route.url === '/docs' || route.url.startsWith('/docs/')) route.config = { ...(route.config ?? {}), access: 'public' };
    // The document says which operations need the key: none for /health and /metrics where they are public.
    const access = (route.config as { access?: RouteAccess } | undefined)?.access;
    if (config.apiKey && route.schema && ((access === 'health' && config.publicHealth) || (access === 'metrics' && config.publicMetrics))) {
      route.schema = { ...route.schema, security: [] } as typeof route.schema;
    }
  });
  if (config.apiKey) {
    const expected = digest(config.apiKey);
    const isPublic = (access: RouteAccess | undefined) =>
      access === 'public' || (access === 'health' && config.publicHealth) || (access === 'metrics' && config.publicMetrics);
    app.addHook('onRequest', async (req) => {
      const matched = req.routeOptions.url !== undefined;
      if (matched && isPublic(req.routeOptions.config?.access)) return;
      const header = req.headers.authorization ?? '';
      const token = header.startsWith('Bearer ') ? header.slice(7) : '';
      // Compare fixed-length digests in constant time: neither the key's content nor its length leaks through timing.
      if (!token || !timingSafeEqual(digest(token), expected)) {
        throw token ? errors.incorrectApiKey() : errors.missingApiKey();
      }
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'specserve', description: 'OpenAI-compatible LLM server with speculative decoding on ONNX Runtime', version: VERSION },
      components: config.apiKey ? { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } } : {},
      // Swagger UI's Try it out sends the key only to operations that require it.
      ...(config.apiKey ? { security: [{ bearer: [] }] } : {}),
    },
    // A shared schema is published under its $id (components.schemas.CompletionUsage), not as def-N.
    refResolver: { buildLocalReference: (json, _baseUri, _fragment, i) => (typeof json.$id === 'string' ? json.$id : `def-${i}`) },
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });

  const deps = {
    config,
    model: () => {
      const m = o.served();
      if (!m) throw errors.modelsLoading();
      if (!m.engine.healthy) throw errors.engineRestarting();
      return m;
    },
  };
  registerCompletions(app, deps);
  registerChat(app, deps);
  registerTokenizeRoutes(app, deps);
  registerInfoRoutes(app, o.served, o.metrics);
  return app;
}

/** Loads the models in the engine's thread and describes them to the HTTP layer. */
export async function loadServedModel(config: ServerConfig, metrics: Metrics, log: (m: string) => void): Promise<ServedModel> {
  const hooks: EngineHooks = {
    onForward: (phase, seconds, batch) => metrics.onForward(phase, seconds, batch),
    onVerify: (drafted, accepted) => metrics.onVerify(drafted, accepted),
    onDraftLengths: (ks) => metrics.onDraftLengths(ks),
    onTokens: (n, seconds) => metrics.onTokens(n, seconds),
    onFinish: (stats, finishReason, totalSeconds) => metrics.onFinish(stats, finishReason, totalSeconds),
    onPrefixCache: (queried, hit) => metrics.onPrefixCache(queried, hit),
  };
  // The HTTP thread needs the tokenizer too: the worker's cannot cross, an in-thread engine's is shared.
  const { engine, info, tokenizer } = config.engineThread === 'worker'
    ? await RemoteEngine.start(config, hooks, log).then((r) => ({ ...r, tokenizer: TextTokenizer.load(r.info.targetDir) }))
    : await openEngine(config, hooks, log);
  metrics.modelInfo.set({ model: info.name, role: 'target', dtype: info.dtype, device: info.targetDevice }, 1);
  const draftName = info.draft === 'none' || info.draft === 'ngram' ? info.draft : basename(info.draft);
  if (info.draftDevice) metrics.modelInfo.set({ model: draftName, role: 'draft', dtype: config.draftDtype, device: info.draftDevice }, 1);
  return {
    name: info.name, engine, tokenizer, maxModelLen: info.maxModelLen, vocabSize: info.vocabSize,
    renderChat: chatRenderer(tokenizer, log), chatTemplate: tokenizer.chatTemplate,
    created: Math.floor(Date.now() / 1000),
    description: { dtype: info.dtype, device: info.targetDevice, draft: draftName },
  };
}
