// SIGTERM on the real `specserve serve` process: in-flight requests complete, new connections are refused, exit 0.
import { describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { errors } from '../../../src/server/errors.ts';

const BIN = resolve(import.meta.dirname, '../../../bin/specserve.js');

/** `specserve serve` on a tiny model, ready; and a 1000-token request, running (the server's own gauge says so,
 * however slow the machine; 1000 tokens keep it running long after). */
async function serverWithRequestRunning(extra: string[] = []) {
  const target = tinyModel({ maxPositionEmbeddings: 1024 });
  const child = spawn(process.execPath, [BIN, 'serve', '--target', target, '--draft', 'ngram', '--port', '0', '--log-level', 'info', ...extra],
    { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  const port = await new Promise<number>((res, rej) => {
    child.stdout.on('data', (d: Buffer) => {
      log += d.toString();
      const m = log.match(/listening at http:\/\/127\.0\.0\.1:(\d+)/);
      if (m && log.includes('"ready"')) res(Number(m[1]));
    });
    child.on('exit', () => rej(new Error(`server exited early: ${log}`)));
  });
  const url = `http://127.0.0.1:${port}/v1/completions`;
  const body = JSON.stringify({ model: 'model', prompt: 'a b c', max_tokens: 1000, ignore_eos: true });
  const inFlight = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(async (r) => ({ status: r.status, json: await r.json() }));
  let settled = false;
  void inFlight.finally(() => (settled = true));
  let running = false;
  while (!running && !settled) running = /^specserve_num_requests_running 1$/m.test(await (await fetch(`http://127.0.0.1:${port}/metrics`)).text());
  expect(running).toBe(true);
  const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
  return { child, url, body, inFlight, exited, log: () => log };
}

describe('SIGTERM', () => {
  it('finishes in-flight requests, refuses new ones, and exits 0', async () => {
    const { child, url, body, inFlight, exited, log: logOf } = await serverWithRequestRunning();
    child.kill('SIGTERM');
    const result = (await inFlight).json;
    expect(result.choices[0].finish_reason).toBe('length');
    expect(result.usage.completion_tokens).toBe(1000);
    // While draining, a request gets a clean 503 in OpenAI's shape (or, once closed, the connection is refused).
    const during = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
      async (r) => ({ status: r.status, code: (await r.json()).error?.code }), () => ({ status: 0, code: 'refused' }));
    expect([{ status: 503, code: 'not_ready' }, { status: 0, code: 'refused' }]).toContainEqual(during);
    expect(await exited).toBe(0);
    await expect(fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).rejects.toThrow();
    expect(logOf()).toMatch(/SIGTERM: no new connections/);
  }, 60_000);

  it.each(['worker', 'main'])('past the shutdown deadline, a request still running ends with a 503 that says it was cut short; exit 0 (engine thread: %s)', async (thread) => {
    // A 1 ms deadline: the 1000-token request cannot end before it.
    const { child, inFlight, exited } = await serverWithRequestRunning(['--shutdown-timeout-ms', '1', '--engine-thread', thread]);
    child.kill('SIGTERM');
    const { status, json } = await inFlight;
    expect(status).toBe(503);
    expect(json.error).toMatchObject({ code: 'not_ready', type: 'server_error', message: errors.closedMidway().message });
    expect(await exited).toBe(0);
  }, 60_000);
});
