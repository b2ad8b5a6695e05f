// An engine worker that dies: noticed at once, requests in flight fail fast with a 503 (or an in-stream error),
// /health answers 503 and new requests 503 with Retry-After while it restarts, the worker is restarted with its models
// reloaded (log lines say so), and close() returns whatever state the worker is in.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, post, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { waitFor } from '../../helpers/wait.ts';
import type { RemoteEngine } from '../../../src/server/remote-engine.ts';

const body = { model: 'model', prompt: 'a b c', max_tokens: 16, ignore_eos: true, temperature: 0 };

async function streamText(url: string): Promise<string> {
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...body, stream: true }) });
  return r.text();
}

describe('a dead engine worker, not restarted yet', () => {
  let server: TestServer;
  const logs: string[] = [];
  let dir: string;
  beforeAll(async () => {
    dir = tinyModel({ seed: 3 });
    // A restart that waits long enough for every check below to see the server without its worker.
    server = await startServer({ target: dir, draft: 'none', servedModelName: 'model', engineThread: 'worker', engineRestartDelayMs: 600_000 },
      undefined, (m) => logs.push(m));
  });
  afterAll(() => server.close());

  it('fails requests in flight fast, answers 503 on /health and to new requests, and closes', async () => {
    const engine = server.served.engine as RemoteEngine;
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    engine.pause(); // the requests below wait in the worker's queue: in flight, not finished
    const plain = post(`${server.url}/v1/completions`, body);
    const streamed = streamText(server.url);
    await waitFor(() => engine.numWaiting === 2);
    await engine.terminateWorker();

    const answer = await plain;
    expect(answer.status).toBe(503);
    expect(answer.json.error).toMatchObject({ code: 'not_ready', type: 'server_error' });
    expect(answer.headers.get('retry-after')).toBe('1');
    expect(await streamed).toMatch(/"code":"not_ready"[\s\S]*data: \[DONE\]/);

    const health = await fetch(`${server.url}/health`);
    expect(health.status).toBe(503);
    expect((await health.json()).error.message).toMatch(/restarting/);
    const fresh = await post(`${server.url}/v1/completions`, body);
    expect(fresh.status).toBe(503);
    expect(fresh.headers.get('retry-after')).toBe('1');
    expect(logs.filter((l) => /engine worker exited/.test(l))).toEqual([
      expect.stringMatching(/engine worker exited \(code 1\): failing 2 request\(s\) in flight and restarting it/),
    ]);
    await server.close(); // returns with the worker dead and its restart pending
    server.close = async () => {};
  });
});

describe('a dead engine worker, restarted', () => {
  let server: TestServer;
  const logs: string[] = [];
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ seed: 3 }), draft: 'none', servedModelName: 'model', engineThread: 'worker' },
      undefined, (m) => logs.push(m));
  });
  afterAll(() => server.close());

  it('comes back with its models reloaded and serves again', async () => {
    const engine = server.served.engine as RemoteEngine;
    const before = await post(`${server.url}/v1/completions`, body);
    await engine.terminateWorker();
    await waitFor(() => logs.some((l) => /engine worker restarted: serving again/.test(l)), 60_000);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const after = await post(`${server.url}/v1/completions`, body);
    expect(after.status).toBe(200);
    expect(after.json.choices[0].text).toBe(before.json.choices[0].text);
  });
});
