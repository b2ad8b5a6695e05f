// The real server for benchmarks, in this process, on a loopback port chosen by the OS.
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
