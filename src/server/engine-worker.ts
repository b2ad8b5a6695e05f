// The engine's thread. ONNX Runtime's session.run blocks the thread it is called on for the whole pass (measured:
// a 64-token prefill of a 100M model held the event loop for 108 ms), so the engine runs here and the HTTP thread
// stays free for /health, /metrics and new requests. Messages: see remote-engine.ts.
import { parentPort, workerData } from 'node:worker_threads';
import type { ServerConfig } from './config.ts';
import { openEngine } from './model-loading.ts';
import type { EngineEvent } from '../speculative/generation-request.ts';

const port = parentPort!;
const config = workerData.config as ServerConfig;
// Messages produced in one synchronous stretch (a step's token events, hooks and state) go out as one batch:
// a postMessage costs tens of microseconds, which a tiny model's ~1 ms step would otherwise pay several times.
let outbox: unknown[] = [];
const post = (message: unknown) => {
  outbox.push(message);
  if (outbox.length === 1) {
    queueMicrotask(() => {
      port.postMessage(outbox.length === 1 ? outbox[0] : { type: 'batch', messages: outbox });
      outbox = [];
    });
  }
};
// Reports batch state to the main thread's gauges; set once the engine exists.
let state = () => {};

try {
  const hooks = {
    onForward: (...args: unknown[]) => post({ type: 'hook', name: 'onForward', args }),
    onVerify: (...args: unknown[]) => post({ type: 'hook', name: 'onVerify', args }),
    onTokens: (...args: unknown[]) => post({ type: 'hook', name: 'onTokens', args }),
    onFinish: (...args: unknown[]) => post({ type: 'hook', name: 'onFinish', args }),
    onStep: () => state(),
  };
  // The main thread enforces --max-queue; here the queue is unbounded so that admission is decided in one place.
  const { engine, info } = await openEngine(config, hooks, (message) => post({ type: 'log', message }), Number.MAX_SAFE_INTEGER);
  const ids = new Map<string, string>();
  state = () => post({ type: 'state', running: engine.numRunning, waiting: engine.numWaiting, kvBytes: engine.kvBytes });
  const serialize = (e: EngineEvent) => (e.type === 'error' ? { type: 'error', message: e.error.message } : e);

  port.on('message', async (m: any) => {
    switch (m.type) {
      case 'submit': {
        try {
          const engineId = engine.submit(m.request, (event) => {
            post({ type: 'event', id: m.id, event: serialize(event) });
            if (event.type !== 'token') {
              ids.delete(m.id);
              state();
            }
          });
          if (engineId === null) throw new Error('queue full');
          ids.set(m.id, engineId);
        } catch (err) {
          post({ type: 'event', id: m.id, event: { type: 'error', message: (err as Error).message } });
        }
        state();
        return;
      }
      case 'cancel': {
        const engineId = ids.get(m.id);
        if (engineId) engine.cancel(engineId, m.error ? new Error(m.error) : undefined);
        return;
      }
      case 'abortAll':
        engine.abortAll(new Error(m.error));
        return;
      case 'fault':
        engine.faultInjection = m.fault;
        return;
      case 'close':
        await engine.close();
        post({ type: 'closed' });
        return;
    }
  });
  post({ type: 'ready', info });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}
