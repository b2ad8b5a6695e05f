// `npm run loadtest -- --url ... --connections N --duration S` against a running server prints its summary: requests,
// requests/s, tokens/s, latency, TTFT and inter-token percentiles for streams, responses by status.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { scratchDir } from '../../helpers/shared-models.ts';

const ROOT = resolve(import.meta.dirname, '../../..');

function loadtest(args: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, ['bin/run-ts.js', 'bench/loadtest.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('exit', (code) => done({ code, stdout }));
  });
}

describe('loadtest against a running server', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ seed: 8 }), draft: 'none' });
  });
  afterAll(() => server.close());

  it('streamed, with a prompts file: the summary with TTFT and inter-token percentiles', async () => {
    const file = join(scratchDir('loadtest'), 'prompts.txt');
    writeFileSync(file, 'hello there\nonce upon a time\n');
    const r = await loadtest(['--url', server.url, '--connections', '2', '--duration', '1', '--max-tokens', '8', '--stream', '--prompts', file]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/## loadtest: 2 connections, 1 s, \/v1\/completions \(streamed\)/);
    const row = r.stdout.split('\n').find((l) => /^\| \d+ \|/.test(l))!;
    const cells = row.split('|').map((c) => c.trim()).filter(Boolean);
    expect(Number(cells[0])).toBeGreaterThan(0);
    expect(cells[4]).toMatch(/^\d+\.\d \/ \d+\.\d$/); // TTFT p50 / p99
    expect(r.stdout).toMatch(/Responses by status: 200: \d+\./);
  }, 60_000);

  it('chat, not streamed: latency percentiles and statuses', async () => {
    const r = await loadtest(['--url', server.url, '--connections', '1', '--duration', '1', '--max-tokens', '4', '--chat']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\/v1\/chat\/completions/);
    expect(r.stdout).toMatch(/Responses by status: 200: \d+\./);
  }, 60_000);
});
