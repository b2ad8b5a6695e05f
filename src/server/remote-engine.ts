// The HTTP thread's handle on the engine worker (engine-worker.ts), with the same surface as an in-thread Engine.
// Admission (--max-queue) is decided here, synchronously, from the requests this side has outstanding.
import { Worker } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import type { EngineHandle, EngineHooks } from '../speculative/engine.ts';
import type { EngineEvent, EngineListener, GenerationRequest } from '../speculative/generation-request.ts';
import type { ServerConfig } from './config.ts';
import type { LoadedInfo } from './model-loading.ts';

const WORKER_ENTRY = new URL('./engine-worker.ts', import.meta.url).href;
const TS_WORKER = new URL('../../bin/ts-worker.js', import.meta.url);

export class RemoteEngine implements EngineHandle {
  private readonly listeners = new Map<string, EngineListener>();
  private running = 0;
  private bytes = 0;
  private fault: { badToken: number } | null = null;
  private closed: (() => void) | null = null;

  private constructor(private readonly worker: Worker, private readonly capacity: number, private readonly hooks: EngineHooks,
    private readonly log: (m: string) => void) {
    worker.on('message', (m: any) => this.onMessage(m));
    worker.on('error', (err) => {
      this.log(`engine worker failed: ${err.message}`);
      this.failAll(err);
    });
  }

  static start(config: ServerConfig, hooks: EngineHooks, log: (m: string) => void): Promise<{ engine: RemoteEngine; info: LoadedInfo }> {
    // The worker runs TypeScript through tsx's loader, like the main thread (bin/specserve.js).
    const worker = new Worker(TS_WORKER, { workerData: { entry: WORKER_ENTRY, config } });
    // Capacity as an in-thread engine has it: a full batch running plus a full queue waiting.
    const engine = new RemoteEngine(worker, config.maxBatch + config.maxQueue, hooks, log);
    return new Promise((resolve, reject) => {
      const onStart = (batch: any) => {
        const m = batch.type === 'batch' ? batch.messages.find((x: any) => x.type === 'ready' || x.type === 'failed') ?? {} : batch;
        if (m.type === 'ready') {
          worker.off('message', onStart);
          resolve({ engine, info: m.info as LoadedInfo });
        } else if (m.type === 'failed') {
          worker.off('message', onStart);
          void worker.terminate();
          reject(new Error(m.message));
        }
      };
      worker.on('message', onStart);
      worker.once('error', reject);
    });
  }

  private onMessage(m: any): void {
    switch (m.type) {
      case 'batch':
        for (const message of m.messages) this.onMessage(message);
        return;
      case 'event': {
        const listener = this.listeners.get(m.id);
        if (!listener) return;
        const event: EngineEvent = m.event.type === 'error' ? { type: 'error', error: new Error(m.event.message) } : m.event;
        if (event.type !== 'token') this.listeners.delete(m.id);
        listener(event);
        return;
      }
      case 'state':
        this.running = m.running;
        this.bytes = m.kvBytes;
        return;
      case 'hook':
        (this.hooks as Record<string, (...a: unknown[]) => void>)[m.name]?.(...m.args);
        return;
      case 'log':
        this.log(m.message);
        return;
      case 'closed':
        this.closed?.();
        return;
    }
  }

  private failAll(error: Error): void {
    for (const [id, listener] of this.listeners) {
      this.listeners.delete(id);
      listener({ type: 'error', error });
    }
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
    this.worker.postMessage({ type: 'fault', fault });
  }

  submit(request: GenerationRequest, listener: EngineListener, opts: { streaming?: boolean } = {}): string | null {
    if (this.listeners.size >= this.capacity) return null;
    const id = randomUUID();
    this.listeners.set(id, listener);
    this.worker.postMessage({ type: 'submit', id, request, streaming: opts.streaming ?? false });
    return id;
  }

  cancel(id: string, error?: Error): void {
    if (!this.listeners.has(id)) return;
    this.worker.postMessage({ type: 'cancel', id, error: error?.message });
    // A client cancel gets no further event (the client is gone): forget it now so it stops counting as waiting.
    if (!error) this.listeners.delete(id);
  }

  abortAll(error: Error): void {
    this.worker.postMessage({ type: 'abortAll', error: error.message });
  }

  async close(): Promise<void> {
    const done = new Promise<void>((resolve) => (this.closed = resolve));
    this.worker.postMessage({ type: 'close' });
    await done;
    await this.worker.terminate();
  }
}
