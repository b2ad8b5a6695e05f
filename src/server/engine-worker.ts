// The engine's thread. ONNX Runtime's session.run blocks the thread it is called on for the whole pass (a prefill of a
// 100M-parameter model, a tenth of a second), so the engine runs here and the HTTP thread
// stays free for /health, /metrics and new requests. Messages: see remote-engine.ts.
import { parentPort, workerData } from 'node:worker_threads';
import type { ServerConfig } from './config.ts';
import { openEngine } from './model-loading.ts';
import { GrammarBusyError, GrammarError } from '../runtime/structured/grammar-spec.ts';
import { toWire, type FromWorker, type FromWorkerOne, type ToWorker } from './worker-protocol.ts';
import { EngineClosedError } from '../speculative/engine-api.ts';

const port = parentPort!;
const config = workerData.config as ServerConfig;
// Messages go out in batches. What someone waits for (a streamed token, the end of a request, readiness, logs)
// leaves at the end of the current synchronous stretch; the rest (metrics hooks, batch state, tokens of
// non-streamed requests, which only gather logprobs) waits up to FLUSH_MS for company. A postMessage and the HTTP
// thread's wake-up cost tens of microseconds each: paid every step, a noticeable share of a small model's step.
const FLUSH_MS = 20;
let outbox: FromWorkerOne[] = [];
let flushTimer: NodeJS.Timeout | null = null;
let flushQueued = false;
const flush = () => {
  if (flushTimer) clearTimeout(flushTimer);
  flushTimer = null;
  flushQueued = false;
  if (outbox.length === 0) return;
  const message: FromWorker = outbox.length === 1 ? outbox[0] : { type: 'batch', messages: outbox };
  port.postMessage(message);
  outbox = [];
};
const post = (message: FromWorkerOne, urgent = true) => {
  outbox.push(message);
  if (urgent && !flushQueued) {
    flushQueued = true;
    queueMicrotask(flush);
  } else if (!flushTimer && !flushQueued) {
    flushTimer = setTimeout(flush, FLUSH_MS);
  }
};
// Reports batch state to the main thread's gauges; set once the engine exists.
let state = () => {};

try {
  const hooks = {
    onForward: (...args: unknown[]) => post({ type: 'hook', name: 'onForward', args }, false),
    onVerify: (...args: unknown[]) => post({ type: 'hook', name: 'onVerify', args }, false),
    onDraftLengths: (...args: unknown[]) => post({ type: 'hook', name: 'onDraftLengths', args }, false),
    onTokens: (...args: unknown[]) => post({ type: 'hook', name: 'onTokens', args }, false),
    onFinish: (...args: unknown[]) => post({ type: 'hook', name: 'onFinish', args }, false),
    onPrefixCache: (...args: unknown[]) => post({ type: 'hook', name: 'onPrefixCache', args }, false),
    onStep: () => state(),
  };
  // The main thread enforces --max-queue; here the queue is unbounded so that admission is decided in one place.
  const { engine, info } = await openEngine(config, hooks, (message) => post({ type: 'log', message }), Number.MAX_SAFE_INTEGER);
  const ids = new Map<string, string>();
  state = () => post({ type: 'state', running: engine.numRunning, waiting: engine.numWaiting, kvBytes: engine.kvBytes }, false);

  port.on('message', async (m: ToWorker) => {
    switch (m.type) {
      case 'submit': {
        try {
          const engineId = engine.submit(m.request, (event) => {
            post({ type: 'event', id: m.id, event: toWire(event) }, m.streaming || event.type !== 'token');
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
      case 'prepare':
        engine.prepareConstraint(m.spec).then(() => post({ type: 'prepared', id: m.id }),
          (err: Error) => post({ type: 'prepared', id: m.id, error: err.message, refused: err instanceof GrammarError, busy: err instanceof GrammarBusyError }));
        return;
      case 'cancel': {
        const engineId = ids.get(m.id);
        if (engineId) engine.cancel(engineId, m.error ? new Error(m.error) : undefined);
        return;
      }
      case 'abortAll':
        engine.abortAll(new EngineClosedError(m.error));
        return;
      case 'fault':
        engine.faultInjection = m.fault;
        return;
      case 'pause':
        engine.pause();
        return;
      case 'resume':
        engine.resume();
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
