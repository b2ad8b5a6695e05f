// Starts the real Fastify app with real models on a loopback port (port 0: the OS picks a free one).
import type { FastifyInstance } from 'fastify';
import { buildApp, loadServedModel } from '../../src/server/app.ts';
import { DEFAULTS, type ServerConfig } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import type { ServedModel } from '../../src/server/served-model.ts';

export interface TestServer {
  app: FastifyInstance;
  url: string;
  served: ServedModel;
  metrics: Metrics;
  close(): Promise<void>;
}

export async function startServer(overrides: Partial<ServerConfig>, logger?: object, log: (m: string) => void = () => {}): Promise<TestServer> {
  const config: ServerConfig = { ...DEFAULTS, port: 0, ...overrides };
  const metrics = new Metrics();
  const served = await loadServedModel(config, metrics, log);
  const app = await buildApp({ config, metrics, served: () => served, logger });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    app, served, metrics, url: `http://127.0.0.1:${port}`,
    close: async () => {
      await app.close();
      await served.engine.close();
    },
  };
}

export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any; headers: Headers }> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  return { status: r.status, json, headers: r.headers };
}
