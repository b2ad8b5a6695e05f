// Overload: a burst beyond a small queue gets 429 + Retry-After at once while admitted requests complete.
// Disconnects: clients dropping mid-stream and mid-response cancel their work; running requests and KV bytes return
// to zero (read from /metrics).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type TestServer } from '../../helpers/test-server.ts';
import { tinyModel } from '../../helpers/model-fixtures.ts';
import { waitFor } from '../../helpers/wait.ts';
import { scale } from '../../helpers/stress.ts';

const json = { 'content-type': 'application/json' };

describe('overload', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: 2048 }), draft: 'none', maxBatch: 2, maxQueue: 4 });
  });
  afterAll(() => server.close());

  it('a burst beyond the queue: 429 with Retry-After without waiting for generation; the admitted complete', async () => {
    const maxTokens = scale(400, 1200);
    const body = JSON.stringify({ model: 'model', prompt: 'a b c', max_tokens: maxTokens, ignore_eos: true });
    const burst = scale(40, 200);
    const capacity = 2 + 4; // batch + queue
    // The engine is held through the burst: a refusal that came back waited for no generation, by construction.
    server.served.engine.pause();
    let settled = 0;
    const results = Array.from({ length: burst }, async () => {
      const started = performance.now();
      const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: json, body });
      const payload = await r.json();
      settled++;
      return { status: r.status, retryAfter: r.headers.get('retry-after'), ms: performance.now() - started, payload };
    });
    await waitFor(() => settled === burst - capacity, 60_000);
    server.served.engine.resume();
    const all = await Promise.all(results);
    const admitted = all.filter((r) => r.status === 200);
    const refused = all.filter((r) => r.status === 429);
    expect(admitted.length).toBe(capacity);
    expect(refused.length).toBe(burst - capacity);
    expect(refused.every((r) => r.retryAfter === '1' && r.payload.error.code === 'queue_full')).toBe(true);
    expect(admitted.every((r) => r.payload.usage.completion_tokens === maxTokens)).toBe(true);
    const slowestRefusal = Math.max(...refused.map((r) => r.ms));
    console.log(`[reliability] overload: burst ${burst}, admitted ${admitted.length}, refused ${refused.length}, all refusals ` +
      `answered while the engine was held (slowest ${slowestRefusal.toFixed(0)} ms)`);
  });
});

describe('disconnects', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer({ target: tinyModel({ maxPositionEmbeddings: 1024 }), draft: 'ngram', maxBatch: 8, maxQueue: 64 });
  });
  afterAll(() => server.close());

  it('clients that drop mid-stream and mid-response free everything', async () => {
    const drops = scale(40, 200);
    const body = (stream: boolean) => JSON.stringify({ model: 'model', prompt: 'a b c d', max_tokens: 900, ignore_eos: true, stream });
    const one = async (i: number) => {
      const controller = new AbortController();
      const stream = i % 2 === 0;
      // Non-streamed: the response only starts when generation ends, so drop the connection while it runs.
      if (!stream) setTimeout(() => controller.abort(), 30 + (i % 7) * 5);
      try {
        const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: json, body: body(stream), signal: controller.signal });
        await r.body!.getReader().read(); // streamed: the first chunk, so generation is under way
        controller.abort();
      } catch { /* aborted */ }
    };
    for (let i = 0; i < drops; i += 8) await Promise.all(Array.from({ length: Math.min(8, drops - i) }, (_, j) => one(i + j)));
    const { engine } = server.served;
    await waitFor(() => engine.numRunning === 0 && engine.numWaiting === 0 && engine.kvBytes === 0, 20_000);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^specserve_num_requests_running 0$/m);
    expect(metrics).toMatch(/^specserve_num_requests_waiting 0$/m);
    expect(metrics).toMatch(/^specserve_kv_cache_usage_bytes 0$/m);
    // None of them ran to its 900 tokens: cancellation stopped the work.
    expect(Number(metrics.match(/^specserve_generation_tokens_total (\d+)$/m)?.[1] ?? 0)).toBe(0);
    const ok = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: json, body: JSON.stringify({ model: 'model', prompt: 'x', max_tokens: 3 }) });
    expect(ok.status).toBe(200);
    console.log(`[reliability] disconnects: ${drops} dropped clients; running, waiting and KV bytes back to 0`);
  }, 120_000);
});
