// One grammar worker as the service sees it (grammar-service.ts): requests with replies, messages without, the masks
// it sends unasked, and its load. A worker that dies fails what waits on it.
import { Worker } from 'node:worker_threads';
import { GrammarError } from './grammar-spec.ts';
import type { FromGrammarWorker, GrammarWorkerData, ToGrammarWorker } from './grammar-worker.ts';

const GRAMMAR_WORKER = new URL('./grammar-worker.ts', import.meta.url).href;
const TS_WORKER = new URL('../../../bin/ts-worker.js', import.meta.url);

export type GrammarReply = Extract<FromGrammarWorker, { ok: true }>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type GrammarPush = Extract<FromGrammarWorker, { push: number }>;

/** One grammar worker: requests with replies, messages without, and its load. */
export class GrammarThread {
  private readonly worker: Worker;
  private nextRequest = 1;
  private readonly pending = new Map<number, { resolve: (r: GrammarReply) => void; reject: (e: Error) => void }>();
  dead: Error | null = null;
  openMatchers = 0;
  compiling = 0;
  /** Receivers of the masks the worker sends unasked, by matcher id. */
  readonly pushes = new Map<number, (push: GrammarPush | Error) => void>();

  constructor(data: GrammarWorkerData) {
    this.worker = new Worker(TS_WORKER, { workerData: { entry: GRAMMAR_WORKER, ...data } });
    this.worker.unref();
    this.pending.set(0, { resolve: () => {}, reject: () => {} }); // the worker's "ready" (req 0); requests queue behind it
    this.worker.on('message', (m: FromGrammarWorker) => {
      if ('push' in m) return this.pushes.get(m.push)?.(m);
      const waiter = this.pending.get(m.req);
      if (!waiter) return;
      this.pending.delete(m.req);
      if (m.ok) waiter.resolve(m);
      else waiter.reject(new GrammarError(m.error));
    });
    const die = (err: Error) => {
      this.dead ??= err;
      const error = new Error(`structured output: a grammar worker stopped (${this.dead.message})`);
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
      for (const receiver of this.pushes.values()) receiver(error);
    };
    this.worker.on('error', die);
    this.worker.on('exit', (code) => die(new Error(`exit code ${code}`)));
  }

  /** Sends a message that has a reply (its `req` is assigned here) and resolves with the reply. */
  request(message: DistributiveOmit<Extract<ToGrammarWorker, { req: number }>, 'req'>): Promise<GrammarReply> {
    if (this.dead) return Promise.reject(new Error(`structured output: a grammar worker stopped (${this.dead.message})`));
    const req = this.nextRequest++;
    return new Promise((resolve, reject) => {
      this.pending.set(req, { resolve, reject });
      this.worker.postMessage({ ...message, req });
    });
  }

  send(message: ToGrammarWorker): void {
    if (!this.dead) this.worker.postMessage(message);
  }

  async terminate(): Promise<void> {
    this.dead ??= new Error('terminated');
    await this.worker.terminate();
  }
}
