// npm run bench:event-loop -- /health latency while the engine works, with the engine on the main thread vs in its
// worker thread (ONNX Runtime's session.run blocks the thread that calls it).
import { startBenchServer } from './server-lib.ts';
import { fmt, machine, median, randomBench } from './lib.ts';

const dir = randomBench('bench-20m');
console.log(`## bench:event-loop — bench-20m target, no draft (${machine()})\n`);
console.log('| engine thread | /health probes | p50 ms | p99 ms | max ms | generation wall s |');
console.log('|---|---|---|---|---|---|');
for (const engineThread of ['main', 'worker'] as const) {
  const server = await startBenchServer({ target: dir, draft: 'none', engineThread });
  const body = JSON.stringify({ model: 'bench-20m', prompt: 'the quick brown fox jumps over the lazy dog '.repeat(30), max_tokens: 64, ignore_eos: true });
  let running = true;
  const latencies: number[] = [];
  const probe = (async () => {
    while (running) {
      const t = performance.now();
      await fetch(`${server.url}/health`);
      latencies.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, 5));
    }
  })();
  const started = performance.now();
  await Promise.all(Array.from({ length: 4 }, () => fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.json())));
  const wall = (performance.now() - started) / 1000;
  running = false;
  await probe;
  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(`| ${engineThread} | ${latencies.length} | ${fmt(median(latencies), 1)} | ${fmt(sorted[Math.floor(sorted.length * 0.99)], 1)} | ${fmt(sorted[sorted.length - 1], 1)} | ${fmt(wall, 2)} |`);
  await server.close();
}
console.log('\n4 concurrent requests, ~300-token prompts, 64 tokens each; /health polled every 5 ms.');
