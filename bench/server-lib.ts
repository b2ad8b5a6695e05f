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
  const stop = () => server.kill('SIGTERM');
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
