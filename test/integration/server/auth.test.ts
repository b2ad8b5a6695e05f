// API keys decided by the route the router matched, deny by default: every spelling of every route that is not
// explicitly public answers 401 without the key, whatever the path's encoding, slashes, dot segments or case.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';

/** A request with the path exactly as given (fetch would normalise it). */
function raw(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<number> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request({ hostname, port, method, path, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const encode = (path: string) => path.split('').map((c, i) => (i > 0 && /[a-z]/.test(c) ? `%${c.charCodeAt(0).toString(16)}` : c)).join('');
/** Spellings a router or proxy may take for `path`. */
function spellings(path: string): string[] {
  const [, first, ...rest] = path.split('/');
  return [
    path, encode(path), `/${encodeURIComponent(first).replace(/[a-z]/, (c) => `%${c.charCodeAt(0).toString(16)}`)}/${rest.join('/')}`,
    `/${path}`, path.replace(/\//g, '//'), `${path}/`, path.toUpperCase(), `/./${path.slice(1)}`, `/x/..${path}`,
    `${path}?x=1`, `${path}#frag`, `${path};x`, `${path}%00`, `${path}%2f`,
  ];
}

const ROUTES: [string, string, string | undefined][] = [
  ['POST', '/v1/completions', JSON.stringify({ model: 'model', prompt: 'a', max_tokens: 1 })],
  ['POST', '/v1/chat/completions', JSON.stringify({ model: 'model', messages: [{ role: 'user', content: 'a' }], max_tokens: 1 })],
  ['GET', '/v1/models', undefined],
  ['GET', '/health', undefined],
  ['GET', '/metrics', undefined],
];

describe('API key: deny by default, by matched route', () => {
  let keyed: TestServer;
  let open: TestServer;
  beforeAll(async () => {
    const dir = tinyModel();
    keyed = await startServer({ target: dir, draft: 'none', apiKey: 'K', publicHealth: false, publicMetrics: false, servedModelName: 'model' });
    open = await startServer({ target: dir, draft: 'none', apiKey: 'K', servedModelName: 'model' });
  });
  afterAll(async () => {
    await keyed.close();
    await open.close();
  });

  it.each(ROUTES)('%s %s: no spelling answers without the key', async (method, path, body) => {
    const answers: Record<string, number> = {};
    for (const spelling of spellings(path)) answers[spelling] = await raw(keyed.url, method, spelling, {}, body);
    expect(Object.entries(answers).filter(([, status]) => status !== 401)).toEqual([]);
    // and the key opens the canonical spelling
    expect(await raw(keyed.url, method, path, { authorization: 'Bearer K' }, body)).toBe(200);
  });

  it('unknown routes and methods are denied too, not probed (401 before 404 or 405)', async () => {
    for (const [method, path] of [['GET', '/v2/models'], ['DELETE', '/v1/models'], ['GET', '/'], ['POST', '/health'], ['GET', '/%2e%2e/etc/passwd']]) {
      expect(await raw(keyed.url, method, path), `${method} ${path}`).toBe(401);
    }
    expect(await raw(keyed.url, 'GET', '/v2/models', { authorization: 'Bearer K' })).toBe(404);
  });

  it('public routes stay public in every spelling the router takes: /health, /metrics as configured, the API docs', async () => {
    expect(await raw(open.url, 'GET', '/health')).toBe(200);
    expect(await raw(open.url, 'GET', '/%68ealth')).toBe(200);
    expect(await raw(open.url, 'GET', '/metrics')).toBe(200);
    expect(await raw(open.url, 'GET', '/docs/json')).toBe(200);
    expect(await raw(keyed.url, 'GET', '/docs/json')).toBe(200);
    for (const spelling of spellings('/v1/models')) expect(await raw(open.url, 'GET', spelling), spelling).toBe(401);
  });

  it('the API docs ask for the key, so that Swagger UI\'s Try it out sends it', async () => {
    const doc = await (await fetch(`${keyed.url}/docs/json`)).json();
    expect(doc.components.securitySchemes).toEqual({ bearer: { type: 'http', scheme: 'bearer' } });
    expect(doc.security).toEqual([{ bearer: [] }]);
    expect(doc.paths['/health'].get.security).toBeUndefined(); // --public-health false: the key, as everywhere
    // Public by default: there, /health and /metrics say they need nothing.
    const openDoc = await (await fetch(`${open.url}/docs/json`)).json();
    expect(openDoc.paths['/health'].get.security).toEqual([]);
    expect(openDoc.paths['/metrics'].get.security).toEqual([]);
    expect(openDoc.paths['/v1/models'].get.security).toBeUndefined();
  });
});
