// The messages between the HTTP thread (remote-engine.ts) and the engine worker (engine-worker.ts), typed once for
// both ends. Everything is plain data (structured clone): errors cross as messages.
import type { EngineEvent, GenerationRequest, GrammarSpec } from '../speculative/generation-request.ts';
import { EngineClosedError } from '../speculative/engine-api.ts';
import type { LoadedInfo } from './model-loading.ts';

/** HTTP thread -> worker. */
export type ToWorker =
  | { type: 'submit'; id: string; request: GenerationRequest; streaming: boolean }
  | { type: 'cancel'; id: string; error?: string }
  | { type: 'prepare'; id: string; spec: GrammarSpec }
  /** At shutdown: every request ends with an EngineClosedError. */
  | { type: 'abortAll'; error: string }
  | { type: 'fault'; fault: { badToken: number } | null }
  | { type: 'pause' }
  | { type: 'resume' }
  | { type: 'close' };

/** An engine event as it crosses: an error as its message, and whether the engine's closing caused it. */
export type WireEvent = Exclude<EngineEvent, { type: 'error' }> | { type: 'error'; message: string; closed?: boolean };

export type HookName = 'onForward' | 'onVerify' | 'onDraftLengths' | 'onTokens' | 'onFinish' | 'onPrefixCache';

/** Worker -> HTTP thread (one at a time, or several in a batch). */
export type FromWorkerOne =
  | { type: 'ready'; info: LoadedInfo }
  | { type: 'failed'; message: string }
  | { type: 'event'; id: string; event: WireEvent }
  | { type: 'state'; running: number; waiting: number; kvBytes: number }
  | { type: 'hook'; name: HookName; args: unknown[] }
  | { type: 'log'; message: string }
  /** A grammar prepared (no error), refused (`refused`: a GrammarError, the client's fault), deferred (`busy`), or
   * failed. */
  | { type: 'prepared'; id: string; error?: string; refused?: boolean; busy?: boolean }
  | { type: 'closed' };

export type FromWorker = FromWorkerOne | { type: 'batch'; messages: FromWorkerOne[] };

/** The messages of a batch, or the message itself. */
export function unbatch(m: FromWorker): FromWorkerOne[] {
  return m.type === 'batch' ? m.messages : [m];
}

export function toWire(event: EngineEvent): WireEvent {
  if (event.type !== 'error') return event;
  return { type: 'error', message: event.error.message, ...(event.error instanceof EngineClosedError ? { closed: true } : {}) };
}

export function fromWire(event: WireEvent): EngineEvent {
  if (event.type !== 'error') return event;
  return { type: 'error', error: event.closed ? new EngineClosedError(event.message) : new Error(event.message) };
}
