// `specserve serve`: listen first (so /health answers 503 while loading, as vLLM does), load the models, serve;
// on SIGTERM stop accepting, let in-flight requests finish within the deadline, then exit 0.
import net from 'node:net';
import { parseServerConfig, usage, type ServerConfig } from './config.ts';
import { Metrics } from './metrics.ts';
import { buildApp, loadServedModel } from './app.ts';
import type { ServedModel } from './served-model.ts';
import { EngineClosedError } from '../speculative/engine-api.ts';

// Time between refusing requests (503) and closing the listener and idle connections, on SIGTERM.
export const DRAIN_GRACE_MS = 500;
// A second signal sooner than this after the first is a duplicate of it, not a request to exit at once.
const REPEAT_SIGNAL_MS = 1000;

export interface ServeOptions {
  /** The models to serve when no --target is given (the CLI's built-in demo pair), built on first use. */
  defaultModels?: (log: (m: string) => void) => { target: string; draft: string };
}

export async function serve(argv: string[], o: ServeOptions = {}): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(usage());
    return 0;
  }
  let config: ServerConfig;
  try {
    config = parseServerConfig(argv);
  } catch (err) {
    console.error(`specserve serve: ${(err as Error).message}`);
    return 2;
  }
  const metrics = new Metrics();
  let served: ServedModel | null = null;
  const lifecycle = { draining: false };
  // A signal while the app starts or the models load (minutes, for a large one) ends the process at once: nothing is
  // in flight yet. In a container the process is PID 1, which the kernel gives no default action: without a handler,
  // the signal would be ignored until the orchestrator's SIGKILL. The handler is in place before the listener opens,
  // so a signal sent as soon as "listening" is logged finds it.
  // Handlers stay on (a second signal must not meet the default action) and act once.
  let starting: Awaited<ReturnType<typeof buildApp>> | undefined;
  let exiting = false;
  const whileLoading = (signal: NodeJS.Signals) => {
    if (exiting) return;
    exiting = true;
    if (!starting) process.exit(0);
    starting.log.info(`${signal} while loading the models: exiting`);
    void starting.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', whileLoading);
  process.on('SIGINT', whileLoading);
  try {
    starting = await buildApp({ config, metrics, served: () => served, logger: { level: config.logLevel }, lifecycle });
    await starting.listen({ host: config.host, port: config.port });
  } catch (err) {
    process.off('SIGTERM', whileLoading);
    process.off('SIGINT', whileLoading);
    // A listener that failed to open (the port taken) leaves the app to close; the listen error is the one to report.
    await starting?.close().catch(() => {});
    throw err;
  }
  const app = starting;
  const log = (m: string) => app.log.info(m);
  try {
    if (!config.target) {
      if (!o.defaultModels) throw new Error('no --target given');
      const demo = o.defaultModels(log);
      config = { ...config, target: demo.target, draft: config.draft ?? demo.draft };
    }
    served = await loadServedModel(config, metrics, log);
  } catch (err) {
    app.log.error(`could not load models: ${(err as Error).message}`);
    await app.close();
    return 1;
  } finally {
    process.off('SIGTERM', whileLoading);
    process.off('SIGINT', whileLoading);
  }
  log('ready');

  return new Promise<number>((resolve) => {
    let stopping = false;
    let stoppingAt = 0;
    const stop = async (signal: string) => {
      if (stopping) {
        // A second signal while draining: the operator wants out now (uvicorn's and vLLM's second Ctrl-C). One within
        // a second of the first is the same Ctrl-C delivered twice (the terminal's process group, and npm passing
        // it on), and is ignored.
        if (Date.now() - stoppingAt < REPEAT_SIGNAL_MS) return;
        app.log.warn(`second ${signal} while draining: exiting without waiting for in-flight requests`);
        process.exit(1);
      }
      stopping = true;
      stoppingAt = Date.now();
      log(`${signal}: no new connections; finishing in-flight requests (deadline ${config.shutdownTimeoutMs} ms)`);
      const deadline = setTimeout(() => {
        app.log.warn('shutdown deadline passed: failing the requests still running');
        served?.engine.abortAll(new EngineClosedError('the server is shutting down'));
      }, config.shutdownTimeoutMs);
      // First a short drain: clients mid-way through sending on a keep-alive connection get a clean 503 with
      // `connection: close` rather than a reset socket. Then close; keep-alive connections that go idle after their
      // last response would hold app.close() open, so sweep them.
      lifecycle.draining = true;
      await new Promise((r) => setTimeout(r, DRAIN_GRACE_MS));
      // Stop accepting, but let connections accepted a moment ago deliver their request (and get the 503) before
      // idle connections are closed: http.Server.close() would reset those at once.
      net.Server.prototype.close.call(app.server);
      await new Promise((r) => setTimeout(r, DRAIN_GRACE_MS));
      const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
      try {
        await app.close();
        await served?.engine.close();
      } finally {
        clearTimeout(deadline);
        clearInterval(sweep);
      }
      log('stopped');
      resolve(0);
    };
    // Kept on: a second signal while draining meets `stop`'s own answer, not the default action.
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });
}
