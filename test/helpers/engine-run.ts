// Drives the real engine: submits requests (optionally joining at later steps) and collects their outputs.
import { Engine } from '../../src/speculative/engine.ts';
import type { EngineEvent, GenerationRequest } from '../../src/speculative/generation-request.ts';

export interface Collected {
  tokens: number[];
  text: string;
  finishReason: string;
  events: EngineEvent[];
  numDrafted: number;
  numAccepted: number;
  numTargetPasses: number;
}

export function collect(engine: Engine, request: GenerationRequest): Promise<Collected> {
  return new Promise((resolve, reject) => {
    const events: EngineEvent[] = [];
    const id = engine.submit(request, (e) => {
      events.push(e);
      if (e.type === 'error') reject(e.error);
      if (e.type === 'done') {
        resolve({
          tokens: e.tokens, text: e.text, finishReason: e.finishReason, events,
          numDrafted: e.stats.numDrafted, numAccepted: e.stats.numAccepted, numTargetPasses: e.stats.numTargetPasses,
        });
      }
    });
    if (id === null) reject(new Error('queue full'));
  });
}

/** Submits request i after i * staggerMs, so that requests join a running batch at different steps. */
export async function runStaggered(engine: Engine, requests: GenerationRequest[], staggerMs: number): Promise<Collected[]> {
  return Promise.all(requests.map(async (r, i) => {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, i * staggerMs));
    return collect(engine, r);
  }));
}
