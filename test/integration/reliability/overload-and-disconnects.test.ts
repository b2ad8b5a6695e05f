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
    // Admitted requests long enough that generating one outlasts the burst's HTTP handling: 200 connections on 2
    // cores take ~0.7 s to answer, and 400 tokens of the tiny model now generate in ~0.5 s.
    const maxTokens = scale(400, 1200);
    const body = JSON.stringify({ model: 'model', prompt: 'a b c', max_tokens: maxTokens, ignore_eos: true });
    const burst = scale(40, 200);
    // Baseline: as many requests as the server admits (batch 2 + queue 4), alone.
    const baseline = await Promise.all(Array.from({ length: 6 }, async () => {
      const started = performance.now();
      await (await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: json, body })).json();
      return performance.now() - started;
    }));
    const results = await Promise.all(Array.from({ length: burst }, async () => {
      const started = performance.now();
      const r = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: json, body });
      const payload = await r.json();
      return { status: r.status, retryAfter: r.headers.get('retry-after'), ms: performance.now() - started, end: performance.now(), payload };
    }));
    const admitted = results.filter((r) => r.status === 200);
    const refused = results.filter((r) => r.status === 429);
    expect(admitted.length + refused.length).toBe(burst);
    expect(admitted.length).toBeGreaterThanOrEqual(2 + 4 - 1); // batch + queue (the first step may already have admitted)
    expect(refused.length).toBeGreaterThan(burst / 2);
    expect(refused.every((r) => r.retryAfter === '1' && r.payload.error.code === 'queue_full')).toBe(true);
    expect(admitted.every((r) => r.payload.usage.completion_tokens === maxTokens)).toBe(true);
    // "Quickly": refusals do not wait for generation; the typical refusal is answered before any admitted request
    // completes (with hundreds of connections on 2 cores, the last few refusals can trail the first completion).
    const refusedMs = refused.map((r) => r.ms).sort((a, b) => a - b);
    expect(refusedMs[Math.floor(refusedMs.length / 2)]).toBeLessThan(Math.min(...admitted.map((r) => r.ms)));
    const sorted = admitted.map((r) => r.ms).sort((a, b) => a - b);
    console.log(`[reliability] overload: burst ${burst}, admitted ${admitted.length}, refused ${refused.length}; ` +
      `admitted latency p50 ${sorted[Math.floor(sorted.length / 2)].toFixed(0)} ms, p99 ${sorted[Math.floor(sorted.length * 0.99)].toFixed(0)} ms; ` +
      `slowest refusal ${Math.max(...refused.map((r) => r.ms)).toFixed(0)} ms; the same 6 requests without the burst: p99 ` +
      `${Math.max(...baseline).toFixed(0)} ms`);
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
