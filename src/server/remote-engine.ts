// The HTTP thread's handle on the engine worker (engine-worker.ts), with the same surface as an in-thread Engine.
// Admission (--max-queue) is decided here, synchronously, from the requests this side has outstanding.
//
// A worker that dies (a crash in native code, an uncaught error, terminate()) is noticed at once from its 'exit':
// every request in flight fails with a 503, the handle reports itself unhealthy (/health 503, new requests 503 with
// Retry-After) and a new worker is started, reloading the models, with a log line at each step. close() returns
// whether the worker is alive, dead or restarting.
import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { EngineHandle, EngineHooks } from '../speculative/engine.ts';
import type { EngineListener, GenerationRequest, GrammarSpec } from '../speculative/generation-request.ts';
import { GrammarBusyError, GrammarError } from '../runtime/structured/grammar-spec.ts';
import type { ServerConfig } from './config.ts';
import type { LoadedInfo } from './model-loading.ts';
import { errors } from './errors.ts';
import { fromWire, unbatch, type FromWorker, type FromWorkerOne, type ToWorker } from './worker-protocol.ts';

const WORKER_ENTRY = new URL('./engine-worker.ts', import.meta.url).href;
const TS_WORKER = new URL('../../bin/ts-worker.js', import.meta.url);
/** How long close() waits for the worker to finish its requests before terminating it. */
const CLOSE_TIMEOUT_MS = 10_000;
const MAX_RESTART_DELAY_MS = 30_000;

/** Starts a worker and waits for its models; its log lines go to `log` while it loads. */
function spawnWorker(config: ServerConfig, log: (m: string) => void): Promise<{ worker: Worker; info: LoadedInfo }> {
  // The worker runs TypeScript through tsx's loader, like the main thread (bin/specserve.js).
  const worker = new Worker(TS_WORKER, { workerData: { entry: WORKER_ENTRY, config } });
  return new Promise((resolve, reject) => {
    const onMessage = (batch: FromWorker) => {
      for (const m of unbatch(batch)) {
        if (m.type === 'log') log(m.message);
        if (m.type === 'ready' || m.type === 'failed') {
          worker.off('message', onMessage);
          worker.off('exit', onExit);
          if (m.type === 'ready') resolve({ worker, info: m.info });
          else void worker.terminate().then(() => reject(new Error(m.message)));
          return;
        }
      }
    };
    const onExit = (code: number) => reject(new Error(`the engine worker exited (code ${code}) while loading the models`));
    worker.on('message', onMessage);
    worker.once('exit', onExit);
    worker.once('error', (err) => log(`engine worker error while loading: ${err.message}`));
  });
}

export class RemoteEngine implements EngineHandle {
  private readonly listeners = new Map<string, EngineListener>();
  private readonly preparing = new Map<string, { resolve: () => void; reject: (e: Error) => void }>();
  private worker!: Worker;
  private alive = false;
  private closing = false;
  private running = 0;
  private bytes = 0;
  private fault: { badToken: number } | null = null;
  private closed: (() => void) | null = null;
  private restartTimer: NodeJS.Timeout | null = null;

  private constructor(private readonly config: ServerConfig, private readonly capacity: number, private readonly hooks: EngineHooks,
    private readonly log: (m: string) => void) {}

  static async start(config: ServerConfig, hooks: EngineHooks, log: (m: string) => void): Promise<{ engine: RemoteEngine; info: LoadedInfo }> {
    const { worker, info } = await spawnWorker(config, log);
    // Capacity as an in-thread engine has it: a full batch running plus a full queue waiting.
    const engine = new RemoteEngine(config, config.maxBatch + config.maxQueue, hooks, log);
    engine.attach(worker);
    return { engine, info };
  }

  private attach(worker: Worker): void {
    this.worker = worker;
    this.alive = true;
    worker.on('message', (m: FromWorker) => {
      for (const one of unbatch(m)) this.onMessage(one);
    });
    worker.on('error', (err) => this.log(`engine worker error: ${err.message}`));
    worker.on('exit', (code) => this.onExit(worker, code));
  }

  private onExit(worker: Worker, code: number): void {
    if (worker !== this.worker) return;
    this.alive = false;
    this.running = 0;
    this.bytes = 0;
    this.closed?.();
    if (this.closing) return;
    this.log(`engine worker exited (code ${code}): failing ${this.listeners.size} request(s) in flight and restarting it (the models reload)`);
    this.failAll(errors.engineStopped());
    for (const waiter of this.preparing.values()) waiter.reject(errors.engineStopped());
    this.preparing.clear();
    this.restart(0);
  }

  private restart(attempt: number): void {
    const first = this.config.engineRestartDelayMs ?? 0;
    const delay = attempt === 0 ? first : Math.min(MAX_RESTART_DELAY_MS, Math.max(first, 1000) * 2 ** (attempt - 1));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closing) return;
      spawnWorker(this.config, this.log).then(({ worker }) => {
        if (this.closing) return void worker.terminate();
        this.attach(worker);
        if (this.fault) this.post({ type: 'fault', fault: this.fault });
        this.log('engine worker restarted: serving again');
      }, (err: Error) => {
        this.log(`engine worker restart failed (${err.message}); trying again`);
        this.restart(attempt + 1);
      });
    }, delay);
  }

  private post(message: ToWorker): void {
    if (this.alive) this.worker.postMessage(message);
  }

  private onMessage(m: FromWorkerOne): void {
    switch (m.type) {
      case 'event': {
        const listener = this.listeners.get(m.id);
        if (!listener) return;
        const event = fromWire(m.event);
        if (event.type !== 'token') this.listeners.delete(m.id);
        listener(event);
        return;
      }
      case 'state':
        this.running = m.running;
        this.bytes = m.kvBytes;
        return;
      case 'hook':
        (this.hooks[m.name] as ((...a: unknown[]) => void) | undefined)?.(...m.args);
        return;
      case 'log':
        this.log(m.message);
        return;
      case 'prepared': {
        const waiter = this.preparing.get(m.id);
        this.preparing.delete(m.id);
        if (!m.error) waiter?.resolve();
        else waiter?.reject(m.refused ? new GrammarError(m.error) : m.busy ? new GrammarBusyError(m.error) : new Error(m.error));
        return;
      }
      case 'closed':
        this.closed?.();
        return;
      case 'ready':
      case 'failed':
        return; // start-up's, handled by spawnWorker
    }
  }

  private failAll(error: Error): void {
    for (const [id, listener] of this.listeners) {
      this.listeners.delete(id);
      try {
        listener({ type: 'error', error });
      } catch {
        // one listener's failure is its own
      }
    }
  }

  get healthy(): boolean {
    return this.alive && !this.closing;
  }

  get numRunning(): number {
    return this.running;
  }

  get numWaiting(): number {
    return Math.max(0, this.listeners.size - this.running);
  }

  get kvBytes(): number {
    return this.bytes;
  }

  get faultInjection(): { badToken: number } | null {
    return this.fault;
  }

  set faultInjection(fault: { badToken: number } | null) {
    this.fault = fault;
    this.post({ type: 'fault', fault });
  }

  pause(): void {
    this.post({ type: 'pause' });
  }

  resume(): void {
    this.post({ type: 'resume' });
  }

  /** Stops the worker thread as a crash would (operators and tests: what a dead worker does to the server). */
  async terminateWorker(): Promise<void> {
    await this.worker.terminate();
  }

  submit(request: GenerationRequest, listener: EngineListener, opts: { streaming?: boolean } = {}): string | null {
    if (!this.alive) throw errors.engineRestarting();
    if (this.listeners.size >= this.capacity) return null;
    const id = randomUUID();
    this.listeners.set(id, listener);
    this.post({ type: 'submit', id, request, streaming: opts.streaming ?? false });
    return id;
  }

  prepareConstraint(spec: GrammarSpec): Promise<void> {
    if (!this.alive) return Promise.reject(errors.engineRestarting());
    const id = randomUUID();
    return new Promise((resolve, reject) => {
      this.preparing.set(id, { resolve, reject });
      this.post({ type: 'prepare', id, spec });
    });
  }

  cancel(id: string, error?: Error): void {
    if (!this.listeners.has(id)) return;
    this.post({ type: 'cancel', id, error: error?.message });
    // A client cancel gets no further event (the client is gone): forget it now so it stops counting as waiting.
    if (!error) this.listeners.delete(id);
  }

  abortAll(error: Error): void {
    this.post({ type: 'abortAll', error: error.message });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    if (!this.alive) {
      this.failAll(errors.closedMidway());
      return;
    }
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    this.post({ type: 'close' });
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, CLOSE_TIMEOUT_MS)))]);
    clearTimeout(timer);
    await this.worker.terminate();
    this.failAll(errors.closedMidway());
  }
}
