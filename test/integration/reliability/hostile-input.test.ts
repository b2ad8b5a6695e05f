// A table-driven fuzz suite of malformed and hostile requests against the real server: each gets a 4xx in OpenAI's
// shape naming the problem; afterwards the server is healthy, still serves, and logged no error or unhandled rejection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { post, startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { hostileCases } from './hostile-input.cases.ts';
import { waitFor } from '../../helpers/wait.ts';

const LIMITS = { maxN: 4, maxStop: 8, maxPrompts: 16, bodyLimit: 256 * 1024, context: 128 };

describe('hostile input', () => {
  let server: TestServer;
  const logs: { level: number; msg: string }[] = [];
  const rejections: unknown[] = [];
  const onRejection = (r: unknown) => rejections.push(r);
  beforeAll(async () => {
    process.on('unhandledRejection', onRejection);
    const stream = new Writable({ write(chunk, _enc, cb) {
      for (const line of chunk.toString().split('\n').filter(Boolean)) logs.push(JSON.parse(line));
      cb();
    } });
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: LIMITS.context }), draft: 'ngram', maxN: LIMITS.maxN,
      maxStop: LIMITS.maxStop, maxPrompts: LIMITS.maxPrompts, bodyLimitBytes: LIMITS.bodyLimit }, { level: 'warn', stream });
  });
  afterAll(async () => {
    process.off('unhandledRejection', onRejection);
    await server.close();
  });

  const cases = hostileCases(LIMITS);
  it('has at least 200 cases', () => expect(cases.length).toBeGreaterThanOrEqual(200));

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const headers: Record<string, string> = {};
    if (c.contentType !== null) headers['content-type'] = c.contentType ?? 'application/json';
    const body = c.body === undefined ? undefined : typeof c.body === "string" ? c.body : c.body instanceof Uint8Array ? Buffer.from(c.body) : JSON.stringify(c.body);
    const r = await fetch(`${server.url}${c.path ?? '/v1/completions'}`, { method: c.method ?? 'POST', headers, body });
    const json = await r.json();
    const statuses = Array.isArray(c.status) ? c.status : [c.status];
    expect(statuses, JSON.stringify(json)).toContain(r.status);
    expect(Object.keys(json.error).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(json.error.message.length).toBeGreaterThan(5);
    if (c.mentions) expect(`${json.error.message} ${json.error.param}`).toContain(c.mentions);
  });

  it('is healthy afterwards, still serves, and logged no error and no unhandled rejection', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const ok = await post(`${server.url}/v1/completions`, { model: 'model', prompt: 'hello', max_tokens: 4 });
    expect(ok.status).toBe(200);
    expect(ok.json.usage.completion_tokens).toBeGreaterThan(0);
    expect(rejections).toEqual([]);
    expect(logs.filter((l) => l.level >= 50)).toEqual([]);
    await waitFor(() => server.served.engine.numRunning === 0);
  });
});
