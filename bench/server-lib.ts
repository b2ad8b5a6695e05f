// The real server for benchmarks: in this process on a port chosen by the OS, or as its own process (the CLI).
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { buildApp, loadServedModel } from '../src/server/app.ts';
import { DEFAULTS, type ServerConfig } from '../src/server/config.ts';
import { Metrics } from '../src/server/metrics.ts';

export async function startBenchServer(overrides: Partial<ServerConfig>) {
  const config: ServerConfig = { ...DEFAULTS, port: 0, ...overrides };
  const metrics = new Metrics();
  const served = await loadServedModel(config, metrics, () => {});
  const app = await buildApp({ config, metrics, served: () => served });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`, served,
    close: async () => {
      await app.close();
      await served.engine.close();
    },
  };
}

/** `specserve serve ARGS` as a child process on a random loopback port; resolves once /health answers. */
export async function spawnServer(args: string[]): Promise<{ url: string; stop: () => void }> {
  const port = 19000 + Math.floor(Math.random() * 2000);
  const server = spawn(process.execPath, ['bin/specserve.js', 'serve', '--port', String(port), '--log-level', 'warn', ...args],
    { cwd: resolve(import.meta.dirname, '..'), stdio: 'inherit' });
  let stopped = false;
  const stop = () => {
    if (!stopped) server.kill('SIGTERM'); // once: a second signal makes a draining server exit at once
    stopped = true;
  };
  process.on('exit', stop);
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${url}/health`)).ok) return { url, stop };
    } catch { /* starting */ }
    if (i > 300) throw new Error('server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Streams POST `url`/v1/completions with `body` (stream forced on): the arrival time (ms) of each frame with text,
 * and the usage of the last frame that has one. */
export interface StreamUsage {
  prompt_tokens: number;
  completion_tokens: number;
  prompt_tokens_details?: { cached_tokens: number };
}

export async function streamCompletion(url: string, body: Record<string, unknown>): Promise<{ started: number; times: number[]; usage: StreamUsage | null }> {
  const started = performance.now();
  const r = await fetch(`${url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...body, stream: true }) });
  if (!r.ok) throw new Error(`request failed: ${r.status} ${await r.text()}`);
  const reader = r.body!.getReader();
  const times: number[] = [];
  let usage: StreamUsage | null = null;
  let buffered = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffered += new TextDecoder().decode(value);
    let at: number;
    while ((at = buffered.indexOf('\n\n')) >= 0) {
      const frame = buffered.slice(0, at);
      buffered = buffered.slice(at + 2);
      if (!frame.startsWith('data: {')) continue;
      const json = JSON.parse(frame.slice(6));
      if (json.error) throw new Error(`stream failed: ${frame}`);
      if (json.usage) usage = json.usage;
      if (json.choices?.[0]?.text) times.push(performance.now());
    }
  }
  return { started, times, usage };
}

/** The inter-token gaps (ms) of `streams` before `start` (from `since` on), and those overlapping [start, end]. */
export function gapsAround(streams: { times: number[] }[], start: number, end: number, since = -Infinity): { before: number[]; during: number[] } {
  const before: number[] = [];
  const during: number[] = [];
  for (const s of streams) {
    s.times.slice(1).forEach((t, i) => {
      const gap = t - s.times[i];
      if (t > start && s.times[i] < end) during.push(gap);
      else if (t <= start && s.times[i] >= since) before.push(gap);
    });
  }
  return { before, during };
}
