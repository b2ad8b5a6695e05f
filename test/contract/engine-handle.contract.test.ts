// The contract both engine handles keep (the in-thread Engine and the worker's RemoteEngine), one shared test:
// requests complete with their events, pause holds them, cancel and abortAll end them, the gauges return to zero,
// and close() leaves the handle unhealthy.
import { describe, expect, it } from 'vitest';
import { loadServedModel } from '../../src/server/app.ts';
import { DEFAULTS, type ServerConfig } from '../../src/server/config.ts';
import { Metrics } from '../../src/server/metrics.ts';
import type { EngineEvent, GenerationRequest } from '../../src/speculative/generation-request.ts';
import { GREEDY } from '../../src/runtime/sampling.ts';
import { tinyModel } from '../helpers/model-fixtures.ts';
import { waitFor } from '../helpers/wait.ts';

const request: GenerationRequest = { promptIds: [1, 5, 6], maxTokens: 12, sampling: GREEDY, stop: [], ignoreEos: true };

describe.each(['main', 'worker'] as const)('engine handle contract (%s thread)', (engineThread) => {
  it('completes, holds, cancels, aborts, reports and closes as the contract says', async () => {
    const config: ServerConfig = { ...DEFAULTS, target: tinyModel({ seed: 4 }), draft: 'ngram', engineThread };
    const { engine } = await loadServedModel(config, new Metrics(), () => {});
    const run = (r = request) => new Promise<EngineEvent[]>((resolve) => {
      const events: EngineEvent[] = [];
      engine.submit(r, (e) => (events.push(e), e.type !== 'token' && resolve(events)));
    });
    expect(engine.healthy).toBe(true);

    const first = await run();
    expect(first.at(-1)).toMatchObject({ type: 'done', finishReason: 'length' });
    const tokens = first.flatMap((e) => (e.type === 'token' ? e.ids : []));
    expect(tokens).toEqual((first.at(-1) as Extract<EngineEvent, { type: 'done' }>).tokens);
    expect(tokens).toHaveLength(12);

    engine.pause();
    const held = run();
    const cancelled: EngineEvent[] = [];
    const id = engine.submit(request, (e) => cancelled.push(e))!;
    await waitFor(() => engine.numWaiting === 2);
    engine.cancel(id);
    engine.resume();
    expect(((await held).at(-1) as Extract<EngineEvent, { type: 'done' }>).tokens).toEqual(tokens); // same text
    expect(cancelled.filter((e) => e.type === 'done')).toEqual([]);

    engine.pause();
    const aborted = run();
    await waitFor(() => engine.numWaiting === 1);
    engine.abortAll(new Error('stop'));
    engine.resume();
    expect((await aborted).at(-1)).toMatchObject({ type: 'error' });
    await waitFor(() => engine.numRunning === 0 && engine.numWaiting === 0 && engine.kvBytes === 0);

    await engine.close();
    expect(engine.healthy).toBe(false);
  });
});
