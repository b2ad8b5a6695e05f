// One streamed generation, for both routes: the run is admitted first (a full queue is still a plain 429), then the
// event stream opens, each engine event becomes the route's chunk, an error mid-stream is sent in the API's shape,
// and a client that goes away cancels every choice.
import type { FastifyReply } from 'fastify';
import type { EngineHandle } from '../speculative/engine-api.ts';
import type { GenerationRequest } from '../speculative/generation-request.ts';
import { toApiError } from './errors.ts';
import { GenerationRun, type ChoiceOutcome, type TokenEvent } from './generation-run.ts';
import { SseWriter } from './sse.ts';

/** How a route spells its chunks; `null` sends nothing. */
export interface StreamChunks {
  /** Sent as the stream opens, before any token (chat's role delta, an echoed prompt). */
  opening: unknown[];
  token(index: number, event: TokenEvent): unknown | null;
  /** The choice's last chunks (tool calls read from its text, then its finish_reason). */
  finish(outcome: ChoiceOutcome): unknown;
  /** The closing usage chunk, when the client asked for it. */
  usage(outcomes: ChoiceOutcome[]): unknown | null;
}

export async function streamRun(
  reply: FastifyReply, engine: EngineHandle, requests: GenerationRequest[], bufferBytes: number, chunks: StreamChunks,
): Promise<void> {
  let sse: SseWriter | null = null;
  const send = (chunk: unknown) => {
    if (Array.isArray(chunk)) chunk.forEach(send);
    else if (chunk !== null) sse?.send(chunk);
  };
  const run = new GenerationRun(engine, requests, (index, event) => send(chunks.token(index, event)), (o) => send(chunks.finish(o)));
  sse = new SseWriter(reply, bufferBytes);
  sse.onClose(() => run.cancel());
  for (const chunk of chunks.opening) sse.send(chunk);
  try {
    send(chunks.usage(await run.done));
  } catch (err) {
    sse.send(toApiError(err).toJSON());
  }
  sse.end();
}
